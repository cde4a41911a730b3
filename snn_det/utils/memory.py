"""Free memory, and the check that refuses a simulation that cannot fit.

A simulation holds, per time chunk of K steps, a few tensors the size of the
largest site input times K (time is folded into the batch): the input current,
the convolution output, membranes, spikes.  Their size grows with the image and
with K, not with T, so a T too large for memory only hurts through a chunk that is
too long (``chunk_size`` unset means one chunk of all T steps).  The check below
estimates that peak before the first step and names the chunk size that fits.
"""
import ctypes
import ctypes.util
import os
import re
import shutil
import tempfile
from typing import Optional

import torch


class InsufficientMemoryError(MemoryError):
    """A calibration or simulation that would not fit in memory, refused before it runs."""


class InsufficientDiskError(OSError):
    """A calibration whose cache files would not fit on their disk, refused before it
    runs."""


#: float tensors of one chunk's size alive at once while a segment runs on a chunk
#: (input, convolution output, membrane, spikes, the next conv's input, codes)
CHUNK_COPIES = 6


def available_bytes(device=None) -> Optional[int]:
    """Free memory where tensors live: the GPU's, or the host's ``MemAvailable``."""
    device = torch.device(device) if device is not None else torch.device('cpu')
    if device.type == 'cuda':
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open('/proc/meminfo') as f:
            m = re.search(r'^MemAvailable:\s+(\d+) kB', f.read(), re.M)
        return int(m.group(1)) * 1024 if m else None
    except OSError:
        return None


def free_disk_bytes(where: Optional[str]) -> Optional[int]:
    """Free bytes on the disk of ``where`` (a folder not made yet: its nearest existing
    parent; ``None``: the system's temporary folder); ``None`` if the system does not
    say."""
    where = where or tempfile.gettempdir()
    while where and not os.path.isdir(where):
        parent = os.path.dirname(where)
        where = parent if parent != where else ''
    try:
        return shutil.disk_usage(where or '.').free
    except OSError:
        return None


def format_bytes(n: float) -> str:
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return f'{n:.1f} {unit}' if unit != 'B' else f'{int(n)} B'
        n /= 1024
    return f'{n:.1f} TiB'


def simulation_bytes(site_elements_per_step: int, K: int, element_size: int = 4) -> int:
    """Peak bytes of one chunk of K steps whose largest site input has
    ``site_elements_per_step`` elements per step (all images of the batch)."""
    return CHUNK_COPIES * K * site_elements_per_step * element_size


def check_simulation_fits(site_elements_per_step: int, T: int, K: int, images: int,
                          shape: tuple, device=None, available: Optional[int] = None,
                          element_size: int = 4) -> int:
    """Raise :class:`InsufficientMemoryError` naming the fix
    when a chunk of K steps cannot fit in the free memory; return the estimate."""
    need = simulation_bytes(site_elements_per_step, K, element_size)
    free = available_bytes(device) if available is None else available
    if free is None or need <= free:
        return need
    per_step = simulation_bytes(site_elements_per_step, 1, element_size)
    fit = int(free // per_step)
    fix = (f'--chunk-size {fit} (chunk_size={fit} in the config)' if fit >= 1 else
           'fewer images per batch (test_dataloader.batch_size) or smaller images')
    raise InsufficientMemoryError(
        f'simulating T={T} in chunks of {K} steps needs about {format_bytes(need)} for '
        f'{images} image(s) of {shape[-2]}x{shape[-1]} but {format_bytes(free)} is free: '
        f'use {fix}')


def check_stash_fits(kept_bytes: int, steps_done: int, T: int, images: int, shape: tuple,
                     device=None, available: Optional[int] = None) -> int:
    """A two-stage simulation keeps every step's first-phase state (the backbone's spike
    trains) until its second phase.  After ``steps_done`` of ``T`` steps took ``kept_bytes``,
    raise :class:`InsufficientMemoryError` naming the fix when
    the remaining steps' share cannot fit; return the projected total."""
    total = int(kept_bytes * T / max(1, steps_done))
    free = available_bytes(device) if available is None else available
    if free is None or total - kept_bytes <= free:
        return total
    raise InsufficientMemoryError(
        f'a two-stage full scope keeps the spike trains of its first phase (backbone -> RPN) '
        f'for the second (RoI head): about {format_bytes(total)} for T={T} and {images} '
        f'image(s) of {shape[-2]}x{shape[-1]} but {format_bytes(free)} is free: use fewer '
        'images per batch (test_dataloader.batch_size), smaller images or a smaller T '
        '(--chunk-size does not change it)')


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim(0)``;
    nothing elsewhere).

    Calibration frees a site's large buffers between long-lived ones (a frontier's
    codes, the observers' samples); glibc keeps the free pages between them mapped, so
    the resident set would carry the largest pass's leftovers into every later site.
    Called between sites.  It changes no allocator setting: it only returns memory that
    is already free."""
    global _LIBC
    if _LIBC is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
            _LIBC = lib if hasattr(lib, 'malloc_trim') else False
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None
