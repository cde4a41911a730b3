"""Keep a simulation's large CPU tensors on the reusable heap.

A spiking simulation folds time into the batch, so every layer of every time chunk
allocates and frees tensors of tens to hundreds of MB (YOLOv3 D53n's first layers:
420 MB per 8-step chunk of 4 images at 320x320).  glibc serves allocations above
its mmap threshold (at most 32 MB) with fresh ``mmap`` regions and unmaps them on
free, so every such tensor costs the kernel a page fault and a zeroing pass per
4 KiB page: about 460,000 faults in one T=16 simulation of that backbone, and on a
quiet 2-core machine (one thread) that simulation at T=32 in chunks of 8 steps took
3.34 s with them and 2.11 s without (an ad-hoc A/B; the speed benchmark,
docs/results/simulation_speed, runs with this on).

:func:`heap_reuse` turns mmap off for the duration of a simulation
(``mallopt(M_MMAP_MAX, 0)``) and keeps freed memory in the process
(``M_TRIM_THRESHOLD``), so the buffers freed by one layer or chunk serve the next.
The numbers computed are the same.  On leaving, mmap is allowed again and the
free heap is returned to the system (``malloc_trim``): what comes after (the next
phase, or the next batch's simulation) starts from the same memory as without it, so
the peak RSS is not raised by memory kept for reuse.

Calibration keeps tensors for a long time (a frontier's codes, cached images) between
short-lived ones of many sizes.  Put on the heap, each long-lived block pins the
memory around it and freed buffers no longer coalesce, so inside :func:`heap_reuse`
the calibration cache allocates what it keeps with :func:`off_heap_empty`, each block
in its own mapping.  Even so, reuse during calibration is opt-in
(``SNN_DET_CALIB_HEAP_REUSE=1``, :func:`calibration_heap_reuse`): at seed 001's scale
(RetinaNet R50 at 800x1333, 2 images, T=32, LCP, one thread; docs/results/scale_r50_coco,
2026-12-05) it doubled the peak RSS (3.21 -> 6.43 GiB) for a calibration of 320 s against
404 s, on a VM whose speed drifted by a third within that run; what a heap of many
buffer sizes keeps depends on the order of requests, and calibration's targets (and its
memory check, which cannot foresee that) are on memory first.

Where the heap cannot grow in place (another
mapping right above it; it depends on the address layout of the run), glibc maps that
block as its fallback and it is not reused.  Where glibc has moved the calling thread to a
secondary arena (after heavy multi-threaded allocation), blocks above its 64 MB heaps
are mmap'd regardless and this changes nothing.  Without glibc (``mallopt`` not
found) it does nothing.  ``SNN_DET_HEAP_REUSE=0`` turns it off.
"""
import ctypes
import ctypes.util
import math
import mmap
import os
import threading
from contextlib import contextmanager
from typing import Optional

# glibc <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_MMAP_MAX = 65536
#: glibc's default trim threshold, restored on leaving
TRIM_AFTER = 128 << 10
_KEEP = (1 << 31) - 1          # int max: never trim while simulating

#: what the calibration cache keeps inside :func:`heap_reuse` from this size on goes
#: to :func:`off_heap_empty`
OFF_HEAP_MIN = 1 << 20

_lock = threading.Lock()
_depth = 0
_libc = None


def _mallopt():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
            _libc = lib if hasattr(lib, 'mallopt') and hasattr(lib, 'malloc_trim') else False
        except OSError:
            _libc = False
    return _libc or None


def available() -> bool:
    """True when the allocator can be told (glibc) and it is not turned off."""
    return os.environ.get('SNN_DET_HEAP_REUSE', '1') != '0' and _mallopt() is not None


@contextmanager
def heap_reuse():
    """Serve large allocations from the heap and keep freed memory while inside
    (nestable, process-wide: glibc's settings are global)."""
    global _depth
    libc = _mallopt() if available() else None
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, _KEEP)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_AFTER)
                libc.malloc_trim(0)


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (``malloc_trim(0)``; glibc only,
    outside :func:`heap_reuse`, where freed memory is kept on purpose).

    Calibration frees a site's large buffers between long-lived ones (a frontier's
    codes, the observers' samples); glibc keeps the free pages between them mapped, so
    the resident set would carry the largest pass's leftovers into every later site.
    Called between sites and once the thresholds are chosen; it costs a walk of the free
    lists and, in the next pass, the page faults of the pages it gave back."""
    libc = _mallopt()
    if libc is not None and _depth == 0:
        libc.malloc_trim(0)


def active() -> bool:
    """True inside :func:`heap_reuse` (where it has effect)."""
    return _depth > 0


def off_heap_empty(shape, dtype) -> "torch.Tensor":
    """An uninitialised CPU tensor in an anonymous mapping of its own, unmapped when the
    tensor is freed: for what outlives the heap's short-lived buffers."""
    import torch
    numel = math.prod(int(d) for d in shape)
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    buf = mmap.mmap(-1, numel * dtype.itemsize)      # the tensor's storage keeps it alive
    return torch.frombuffer(buf, dtype=dtype, count=numel).reshape(shape)


def enable_huge_pages() -> None:
    """Ask torch's CPU allocator for transparent huge pages (``THP_MEM_ALLOC_ENABLE=1``)
    unless the environment says otherwise; called when :mod:`snn_det` is imported.

    Calibration (where the heap is not reused, above) and every other pass outside
    :func:`heap_reuse` allocate their large tensors in fresh mappings: one page fault
    and one zeroed 4 KiB page at a time.  With the variable set, c10 aligns allocations
    of 2 MB and more to 2 MB and ``madvise``s them ``MADV_HUGEPAGE`` (where the kernel's
    ``transparent_hugepage`` is ``madvise`` or ``always``), so a fault maps 2 MB.  On
    RetinaNet R50 at 416x672, one image, T=16, LCP, one thread (an ad hoc A/B on this
    2-core VM, 2026-12-05): 4.80 M page faults in the conversion without, 0.24 M with,
    and calibration 21.2 s -> 18.0 s; the numbers computed are the same.  c10 reads the
    variable at its first large allocation, so it takes effect when snn_det is imported
    before any; ``THP_MEM_ALLOC_ENABLE=0`` keeps 4 KiB pages."""
    os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')


def calibration_reuse_enabled() -> bool:
    """``SNN_DET_CALIB_HEAP_REUSE=1``: calibration's no-grad passes reuse the heap."""
    return os.environ.get('SNN_DET_CALIB_HEAP_REUSE', '0') == '1'


#: blocks from this size on are kept for reuse inside :func:`block_reuse`
BLOCK_REUSE_MIN = 1 << 20
#: what :func:`block_reuse` may keep above the high-water mark of blocks in use, as a
#: fraction of it (``SNN_DET_BLOCK_REUSE_HEADROOM`` overrides).  A oneDNN convolution on
#: a plain NCHW input holds its reordered input (C_in / C_out of its output's size) while
#: it makes its blocked and then its plain output: at the mark, no exact-size policy can
#: keep all three, and each call zeroes fresh pages for one output and the input copy.
#: RetinaNet R50 at 800x1344, first 13 sites, one image, T=32 (ad hoc, 2026-12-06):
#: 0 -> 1/16 -> 1/8 -> 1/4 took 41.1 / 42.0 / 36.0 / 34.7 s at a peak RSS of
#: 3.34 / 3.49 / 3.58 / 3.81 GiB (per-pass scopes, as before: 49.6 s, 3.33 GiB)
BLOCK_REUSE_HEADROOM = 0.125


def block_reuse_headroom() -> float:
    """The headroom :func:`block_reuse` keeps by default (the environment's, if set)."""
    v = os.environ.get('SNN_DET_BLOCK_REUSE_HEADROOM')
    if v is None:
        return BLOCK_REUSE_HEADROOM
    try:
        room = float(v)
    except ValueError:
        room = -1.0
    if not room >= 0:
        raise ValueError(f'SNN_DET_BLOCK_REUSE_HEADROOM must be a number >= 0 (a fraction '
                         f'of the blocks in use), got {v!r}')
    return room


def block_reuse_available() -> bool:
    """True when the compiled allocator is there (``snn_det.neurons._C``) and
    ``SNN_DET_BLOCK_REUSE`` is not ``0``."""
    if os.environ.get('SNN_DET_BLOCK_REUSE', '1') == '0':
        return False
    import torch

    from ..neurons import fused_available
    return fused_available() and hasattr(torch.ops.snn_det, 'block_reuse_begin')


@contextmanager
def block_reuse(min_bytes: Optional[int] = None, headroom: Optional[float] = None):
    """Reuse freed CPU blocks of the same size while inside, without raising the peak RSS
    (``snn_det/neurons/csrc/block_reuse.cpp``).

    Outside :func:`heap_reuse` every large tensor is a fresh mapping, zeroed by the kernel
    as it is first touched and unmapped when freed; a calibration pass makes the same
    sizes chunk after chunk.  Inside, torch's CPU allocator is stood in for: a freed
    block of ``min_bytes`` or more is kept and given to the next request of exactly its
    size; before a request no kept block fits, the oldest kept blocks are unmapped until
    blocks in use + kept are within ``1 + headroom`` times the most blocks in use so far
    in the scope, so that memory never exceeds what the same requests reach without
    reuse by more than that fraction (with ``headroom=0``, never; the heap's reuse, by
    contrast, keeps free holes of other sizes mapped).  ``min_bytes``, ``headroom``:
    default :data:`BLOCK_REUSE_MIN`, :func:`block_reuse_headroom`; a nested scope keeps
    the outer one's.  Nestable; the last
    exit unmaps what is kept and restores torch's allocator.  Same numbers (only where a
    tensor lives changes).  Without the compiled kernels, or with
    ``SNN_DET_BLOCK_REUSE=0``, it does nothing."""
    if not block_reuse_available():
        yield
        return
    import torch
    torch.ops.snn_det.block_reuse_begin(
        int(min_bytes or BLOCK_REUSE_MIN),
        float(block_reuse_headroom() if headroom is None else headroom))
    try:
        yield
    finally:
        torch.ops.snn_det.block_reuse_end()


def block_reuse_stats() -> dict:
    """Counters of :func:`block_reuse` (``{}`` without it): hits and misses since the
    process started, bytes kept and in use now, and the high-water mark of bytes in use
    in the open (or last) scope."""
    if not block_reuse_available():
        return {}
    import torch
    depth, hits, misses, kept, in_use, high = torch.ops.snn_det.block_reuse_stats()
    return dict(open=depth, hits=hits, misses=misses, kept_bytes=kept, in_use_bytes=in_use,
                high_water_bytes=high)


@contextmanager
def calibration_heap_reuse():
    """Memory reuse around a calibration (all its sites' passes) and the ANN forwards
    that time its floor: :func:`block_reuse` (same-size blocks, peak at most
    :data:`BLOCK_REUSE_HEADROOM` above the blocks' high-water mark), or
    :func:`heap_reuse` where ``SNN_DET_CALIB_HEAP_REUSE=1`` asks for it; what either
    keeps is given back when the scope ends."""
    if calibration_reuse_enabled():
        with heap_reuse():
            yield
    else:
        with block_reuse():
            yield
