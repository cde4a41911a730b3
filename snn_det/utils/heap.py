"""Keep a simulation's large CPU tensors on the reusable heap.

A spiking simulation folds time into the batch, so every layer of every time chunk
allocates and frees tensors of tens to hundreds of MB (YOLOv3 D53n's first layers:
420 MB per 8-step chunk of 4 images at 320x320).  glibc serves allocations above
its mmap threshold (at most 32 MB) with fresh ``mmap`` regions and unmaps them on
free, so every such tensor costs the kernel a page fault and a zeroing pass per
4 KiB page: about 460,000 faults in one T=16 simulation of that backbone, and on a
quiet 2-core machine (one thread) that simulation at T=32 in chunks of 8 steps took
3.45 s with them and 1.92 s without (an ad-hoc measurement; the speed benchmark,
docs/results/simulation_speed, runs with this on).

:func:`heap_reuse` turns mmap off for the duration of a simulation
(``mallopt(M_MMAP_MAX, 0)``) and keeps freed memory in the process
(``M_TRIM_THRESHOLD``), so the buffers freed by one layer or chunk serve the next.
The numbers computed are the same; peak memory is that of the simulation as before
(freed blocks are reused, not added).  On leaving, mmap is allowed again; the heap
keeps up to :data:`TRIM_AFTER` of free memory for the next simulation (a test loop
simulates every batch) and glibc returns the rest at its next trim.

Calibration does not use it: its cache keeps encoded spike trains in RAM between the
transient buffers, and with mmap off the holes they leave could grow the heap past
the peak the memory budget promises.  Without glibc (``mallopt`` not
found) it does nothing.  ``SNN_DET_HEAP_REUSE=0`` turns it off.
"""
import ctypes
import ctypes.util
import os
import threading
from contextlib import contextmanager

# glibc <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_MMAP_MAX = 65536
#: free memory the heap may keep between simulations (the next one reuses it)
TRIM_AFTER = 2 << 30
_KEEP = (1 << 31) - 1          # int max: never trim while simulating

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
