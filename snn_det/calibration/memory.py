"""Will a calibration fit in memory?  An estimate made before it starts.

Calibration holds, at any time, one time chunk of one batch going through one
segment (``K x B x C x H x W`` currents, membranes, spikes and their codes), the
calibration cache's RAM (at most its budget), for fine calibration (BPTT),
one site's whole T-step input and autograd state for one batch, and the freed
blocks kept for reuse (at most a headroom fraction of all that).  The largest
site input of a batch is known from observation (the ANN pass), so the peak
can be estimated before anything heavy runs, and a calibration that cannot fit
is refused with the option that fixes it instead of being killed by the kernel.
"""
import math
from typing import Dict, Optional

from ..conversion.config import OBSERVED_FIRST
from ..conversion.errors import InsufficientMemoryError
from ..utils.heap import block_reuse_headroom
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
    # freed blocks calibration keeps for reuse, above its blocks in use (utils/heap.py)
    parts['reuse'] = int(block_reuse_headroom() * sum(parts.values()))
    parts['total'] = sum(parts.values())
    return parts


def check_calibration_fits(observers, T: int, chunk_size: Optional[int], calib,
                           num_batches: int, cache_budget: Optional[int], device=None,
                           available: Optional[int] = None,
                           keeps_products: bool = True) -> Dict[str, int]:
    """Raise :class:`InsufficientMemoryError` naming the fix if calibration at ``T``
    cannot fit in the free memory; return the estimate otherwise.  ``keeps_products``:
    the cache may keep a site's T-step convolution products between LCP / ACP / CC's
    two passes (:mod:`~snn_det.calibration.currents`), in RAM within its budget (with no
    budget, within a quarter of the free RAM)."""
    largest = max((o.largest_batch for o in observers.values()), default=0)
    free = available_bytes(device) if available is None else available
    # per batch: the ANN boundary (floats) and the SNN's (T steps in at most 2 bits)
    per_batch = largest * 4 + math.ceil(largest * T * 2 / 8)
    if 'weights' in calib:
        per_batch += 3 * largest * 4
    total = per_batch * num_batches
    if keeps_products and calib and calib[0] in OBSERVED_FIRST:
        products = largest * T * 4 * num_batches
        if cache_budget is None and free is not None:
            products = min(products, free // 4)
        total += products
    est = estimate_calibration_bytes(largest, T, chunk_size, calib, cache_budget, total)
    if free is None or est['total'] <= free:
        return est
    # the reuse headroom scales every part, the chunk's too
    room = 1 + block_reuse_headroom()
    fixed = (est['total'] - est['reuse'] - est['chunk']) * room
    per_step = CHUNK_COPIES * largest * 4 * room
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
