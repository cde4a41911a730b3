"""Will a calibration fit in memory?  An estimate made before it starts.

Calibration holds, at any time, one time chunk of one batch going through one
segment (``K x B x C x H x W`` currents, membranes, spikes and their codes), the
calibration cache's RAM (at most its budget), and for fine calibration (BPTT),
one site's whole T-step input and autograd state for one batch.  The largest
site input of a batch is known from observation (the ANN pass), so the peak
can be estimated before anything heavy runs, and a calibration that cannot fit
is refused with the option that fixes it instead of being killed by the kernel.
"""
import math
import tempfile
from typing import Dict, Optional, Sequence

from ..conversion.config import observed_first
from ..conversion.errors import InsufficientDiskError, InsufficientMemoryError
from ..utils.memory import (CHUNK_COPIES, available_bytes, format_bytes,  # noqa: F401
                            free_disk_bytes)
from ..utils.resources import rss_gib

#: T-step float tensors per batch that fine calibration (BPTT) keeps for one site
BPTT_COPIES = 8

#: ``--memory-budget auto``: this share of the machine's memory (``MemTotal``) ...
BUDGET_SHARE_OF_TOTAL = 0.25
#: ... and at most this share of what is free when the run starts
BUDGET_SHARE_OF_FREE = 0.75


def estimate_calibration_bytes(largest_batch: int, T: int, chunk_size: Optional[int],
                               calib, cache_budget: Optional[int], cache_total: int,
                               element_size: int = 4) -> Dict[str, int]:
    """Peak bytes of one calibration, by part.

    ``largest_batch``: elements of the largest site input of one calibration batch;
    ``cache_total``: bytes the calibration cache would hold with no budget."""
    K = T if not chunk_size else max(1, min(int(chunk_size), T))
    parts = dict(chunk=CHUNK_COPIES * K * largest_batch * element_size,
                 cache=cache_total if cache_budget is None else min(cache_budget, cache_total))
    if 'fc' in calib:
        parts['bptt'] = BPTT_COPIES * T * largest_batch * element_size
    parts['total'] = sum(parts.values())
    return parts


def held_bytes(observers, T: int, calib, num_batches: int, cache_budget: Optional[int],
               free: Optional[int], keeps_products: bool,
               product_sites: Optional[Sequence[str]] = None) -> int:
    """Bytes the calibration cache would hold with no budget: per batch the ANN boundary
    (floats) and the SNN's (T steps in at most 2 bits), ACP's weight targets, and the
    T-step convolution products kept between LCP / ACP / CC's two passes (one site's at a
    time: the largest of ``product_sites``, the sites whose products may be kept,
    :func:`~snn_det.runtime.currents.keeps_products_of`; unknown: the largest site)."""
    largest = max((o.largest_batch for o in observers.values()), default=0)
    per_batch = largest * 4 + math.ceil(largest * T * 2 / 8)
    if 'weights' in calib:
        per_batch += 3 * largest * 4
    total = per_batch * num_batches
    if keeps_products and calib and observed_first(calib[0]):
        kept = largest if product_sites is None else max(
            (observers[s].largest_batch for s in product_sites if s in observers), default=0)
        products = kept * T * 4 * num_batches
        if cache_budget is None and free is not None:
            products = min(products, free // 4)
        total += products
    return total


def choose_chunk_size(observers, T: int, calib, num_batches: int,
                      cache_budget: Optional[int], device=None,
                      available: Optional[int] = None, keeps_products: bool = True,
                      share: float = 0.75) -> Optional[int]:
    """The time chunk a calibration runs in when the user set none: ``None`` (all T
    steps at once) when that fits in ``share`` of the free memory, else the longest
    divisor K of T whose estimate (:func:`estimate_calibration_bytes`) fits; 1 when none
    does (then :func:`check_calibration_fits` names what else to change).  A divisor, so
    every chunk has the same length."""
    largest = max((o.largest_batch for o in observers.values()), default=0)
    free = available_bytes(device) if available is None else available
    if free is None or largest == 0:
        return None
    held = held_bytes(observers, T, calib, num_batches, cache_budget, free, keeps_products)
    room = free * share
    for K in sorted((k for k in range(1, T + 1) if T % k == 0), reverse=True):
        if estimate_calibration_bytes(largest, T, K, calib, cache_budget, held)['total'] <= room:
            return None if K == T else K
    return 1


def check_calibration_fits(observers, T: int, chunk_size: Optional[int], calib,
                           num_batches: int, cache_budget: Optional[int], device=None,
                           available: Optional[int] = None,
                           keeps_products: bool = True) -> Dict[str, int]:
    """Raise :class:`InsufficientMemoryError` naming the fix if calibration at ``T``
    cannot fit in the free memory; return the estimate otherwise.  ``keeps_products``:
    the cache may keep a site's T-step convolution products between LCP / ACP / CC's
    two passes (:mod:`~snn_det.runtime.currents`), in RAM within its budget (with no
    budget, within a quarter of the free RAM)."""
    largest = max((o.largest_batch for o in observers.values()), default=0)
    free = available_bytes(device) if available is None else available
    total = held_bytes(observers, T, calib, num_batches, cache_budget, free, keeps_products)
    est = estimate_calibration_bytes(largest, T, chunk_size, calib, cache_budget, total)
    if free is None or est['total'] <= free:
        return est
    fixed = est['total'] - est['chunk']
    per_step = CHUNK_COPIES * largest * 4
    fit = int((free - fixed) // per_step) if free > fixed else 0
    hints = []
    if fit >= 1 and (not chunk_size or fit < chunk_size):
        hints.append(f'--chunk-size {min(fit, T)}')
    if 'bptt' in est and est['bptt'] > free // 2:
        hints.append('fewer images per batch (--calib-batch-size) for fine calibration')
    if cache_budget is None or est['cache'] > free // 2:
        hints.append(f'--calib-cache-budget {max(free // 4 >> 30, 1)}G')
    if not hints:
        hints.append('--calib-batch-size 1')
    parts = ', '.join(f'{k} {format_bytes(v)}' for k, v in est.items() if k != 'total')
    raise InsufficientMemoryError(
        f'calibration at T={T} needs about {format_bytes(est["total"])} ({parts}) but '
        f'{format_bytes(free)} is free: use {" or ".join(hints)}')


def total_bytes() -> Optional[int]:
    """The host's ``MemTotal``."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_memory_budget() -> Optional[int]:
    """``--memory-budget auto``: a quarter of the host's memory, at most three quarters of
    what is free now (6 GiB on a 24 GiB machine that is otherwise idle); ``None`` where
    the host does not say (then nothing is bounded but the free memory)."""
    total, free = total_bytes(), available_bytes()
    shares = [int(v * f) for v, f in ((total, BUDGET_SHARE_OF_TOTAL),
                                       (free, BUDGET_SHARE_OF_FREE)) if v]
    return min(shares) if shares else None


def _divisors_desc(T: int):
    return sorted((k for k in range(1, T + 1) if T % k == 0), reverse=True)


def plan_calibration(largest_batch: int, held: int, T: int, calib, budget: int,
                     process: Optional[int] = None, chunk_size: Optional[int] = None,
                     cache_budget: Optional[int] = None, cache_now: int = 0) -> Dict:
    """Share one memory ``budget`` (bytes, the whole process) between the parts of a
    calibration: what the process already holds (``process``: its resident set now, model,
    data and libraries), one time chunk of the largest site (``CHUNK_COPIES x K x``
    ``largest_batch`` floats), fine calibration's T-step state and the calibration cache's
    RAM (its files take the rest, :class:`~snn_det.runtime.cache.CalibrationCache`).

    ``chunk_size`` / ``cache_budget`` the user set are kept; what is unset is chosen: the
    time chunk K is the longest divisor of T whose working set fits in what is left after
    the cache's needs (``held``: what the cache would hold with no budget), or in half of
    what is left when the cache cannot get all it needs; the cache gets the rest (plus
    ``cache_now``, what it holds already and ``process`` counts).  Returns
    ``dict(chunk_size=K or None for all T, cache_budget=..., parts=..., fits=...)``, the
    parts' sum being the expected peak.  ``fits`` is False when even K = 1 with an empty
    cache is over the budget (the caller refuses, naming the fix)."""
    process = int(rss_gib() * (1 << 30)) if process is None else int(process)
    room = budget - process
    bptt = BPTT_COPIES * T * largest_batch * 4 if 'fc' in calib else 0

    def chunk_bytes(K):
        return CHUNK_COPIES * K * largest_batch * 4

    if chunk_size:
        K = max(1, min(int(chunk_size), T))
    else:
        cache_want = held if cache_budget is None else min(held, cache_budget)
        fits_all = [k for k in _divisors_desc(T) if chunk_bytes(k) + bptt + cache_want <= room]
        fits_half = [k for k in _divisors_desc(T) if chunk_bytes(k) + bptt <= room / 2]
        K = (fits_all or fits_half or [1])[0]
    left = room - chunk_bytes(K) - bptt
    if cache_budget is None:
        cache_budget = max(0, left) + cache_now
    cache_ram = min(cache_budget, held + cache_now)
    parts = dict(process=process, chunk=chunk_bytes(K), cache=max(0, cache_ram - cache_now))
    if bptt:
        parts['bptt'] = bptt
    parts['total'] = sum(parts.values())
    return dict(chunk_size=None if K == T else K, cache_budget=int(cache_budget), parts=parts,
                fits=left >= 0, budget=budget)


def check_disk(plan: Dict, spilled: int, T: int, where: Optional[str],
               free: Optional[int] = None) -> Dict:
    """Record in ``plan`` the disk its cache needs at least and refuse a calibration whose
    files cannot fit: ``spilled`` is what the cache holds beyond its RAM with no kept
    convolution products (the boundaries' floats and spike trains, :func:`held_bytes`
    with ``keeps_products=False``, less the plan's cache RAM).  Kept products need no
    room of their own: the cache keeps them only within half of its disk
    (:meth:`~snn_det.runtime.cache.CalibrationCache.room_for_currents`).  Raises
    :class:`InsufficientDiskError` naming the folder and the fix."""
    need = max(0, int(spilled))
    plan['disk'] = need
    if not need:
        return plan
    free = free_disk_bytes(where) if free is None else free
    plan['disk_free'] = free
    if free is not None and need > free:
        where = where or tempfile.gettempdir()
        raise InsufficientDiskError(
            f'calibration at T={T} writes at least {format_bytes(need)} of cached spike trains '
            f'to files under {where} but {format_bytes(free)} is free there: use '
            '--calib-cache-dir on a larger disk, fewer --calib-images, or a larger '
            '--memory-budget / --calib-cache-budget')
    return plan


def describe_plan(plan: Dict, T: int, chose_chunk: bool, chose_cache: bool) -> str:
    """One line: the expected peak, its parts and what was chosen to fit the budget."""
    p = plan['parts']
    parts = ', '.join(f'{k} {format_bytes(v)}' for k, v in p.items() if k != 'total')
    chosen = [w for w, c in (('time chunk', chose_chunk), ('cache RAM', chose_cache)) if c]
    how = f'; {" and ".join(chosen)} chosen to fit' if chosen else ''
    K = plan['chunk_size'] or T
    disk = f' (at least {format_bytes(plan["disk"])} on disk)' if plan.get('disk') else ''
    return (f'calibration at T={T}: expected peak {format_bytes(p["total"])} ({parts}) of a '
            f'{format_bytes(plan["budget"])} memory budget; time chunk {K} of {T} steps, cache '
            f'RAM up to {format_bytes(plan["cache_budget"])}, files beyond{disk}{how}')


def over_budget_error(plan: Dict, T: int, batch_images: Optional[int] = None) -> str:
    """The one-line refusal of a calibration whose smallest plan is over the budget."""
    p = plan['parts']
    parts = ', '.join(f'{k} {format_bytes(v)}' for k, v in p.items() if k != 'total')
    need = p['total'] - p.get('cache', 0)
    fix = [f'--memory-budget {max(1, -(-need // (1 << 30)) + 1)}G']
    if 'bptt' in p:
        fix.append('fewer images per batch (--calib-batch-size) for fine calibration')
    elif batch_images is None or batch_images > 1:
        fix.append('--calib-batch-size 1')
    return (f'calibration at T={T} needs at least {format_bytes(need)} ({parts}) but the '
            f'memory budget is {format_bytes(plan["budget"])}: use {" or ".join(fix)}')
