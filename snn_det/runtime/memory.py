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
from typing import Dict, Optional

from ..conversion.config import observed_first
from ..conversion.errors import InsufficientMemoryError
from ..utils.memory import CHUNK_COPIES, available_bytes, format_bytes  # noqa: F401

#: T-step float tensors per batch that fine calibration (BPTT) keeps for one site
BPTT_COPIES = 8


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


def _held_bytes(observers, T: int, calib, num_batches: int, cache_budget: Optional[int],
                free: Optional[int], keeps_products: bool) -> int:
    """Bytes the calibration cache would hold with no budget: per batch the ANN boundary
    (floats) and the SNN's (T steps in at most 2 bits), ACP's weight targets, and the
    T-step convolution products kept between LCP / ACP / CC's two passes."""
    largest = max((o.largest_batch for o in observers.values()), default=0)
    per_batch = largest * 4 + math.ceil(largest * T * 2 / 8)
    if 'weights' in calib:
        per_batch += 3 * largest * 4
    total = per_batch * num_batches
    if keeps_products and calib and observed_first(calib[0]):
        products = largest * T * 4 * num_batches
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
    held = _held_bytes(observers, T, calib, num_batches, cache_budget, free, keeps_products)
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
    total = _held_bytes(observers, T, calib, num_batches, cache_budget, free, keeps_products)
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
