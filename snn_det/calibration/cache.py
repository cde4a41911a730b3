"""Where calibration keeps its tensors: in RAM up to a budget, the rest in files.

Seed 001's protocol (Sec. 5.3) calibrates on 128 COCO images at 800x1333 with
T up to 256.  Layer-by-layer calibration keeps, for every calibration batch,
the ANN's and the SNN's tensor at the segment boundary it has reached
(:class:`~snn_det.calibration.frontier.Frontier`), and weight / fine
calibration keep per-site caches.  Those are far larger than RAM at that scale,
so they live in a :class:`CalibrationCache`:

* :meth:`CalibrationCache.put` stores a tensor (moved to the CPU) and returns a
  :class:`Stored` handle; :meth:`Stored.load` gives it back, on ``device``;
* while the tensors held in RAM stay within ``budget`` bytes a new tensor is
  kept in RAM, otherwise it is written to a file under a private temporary
  directory (inside ``root``, e.g. the work dir) and read back on each load;
* an entry is freed (RAM released, file deleted) as soon as its handle is no
  longer referenced, and :meth:`close` -- called when the conversion ends or
  fails, also through ``with`` -- removes the directory and everything in it.

Spike trains are stored exactly in bits (:mod:`snn_det.calibration.spike_codes`)
before they reach the cache, so the budget goes 32x further for them.
"""
import os
import shutil
import tempfile
import threading
import weakref
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from ..utils import heap
from ..utils.memory import format_bytes  # noqa: F401  (re-exported)

_UNITS = {'': 1, 'b': 1, 'k': 1 << 10, 'kb': 1 << 10, 'kib': 1 << 10, 'm': 1 << 20,
          'mb': 1 << 20, 'mib': 1 << 20, 'g': 1 << 30, 'gb': 1 << 30, 'gib': 1 << 30,
          't': 1 << 40, 'tb': 1 << 40, 'tib': 1 << 40}


def parse_bytes(value: Union[str, int, float, None]) -> Optional[int]:
    """``'4G'``, ``'512MB'``, ``1e9`` -> bytes; ``None`` / ``'inf'`` -> no limit."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f'a memory budget cannot be negative, got {value}')
        return int(value)
    s = str(value).strip().lower().replace(' ', '')
    if s in ('inf', 'none', 'unlimited'):
        return None
    num = s.rstrip('abcdefghijklmnopqrstuvwxyz')
    unit = s[len(num):]
    try:
        out = float(num) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"cannot read '{value}' as a size; write e.g. 4G, 512M or 0") from None
    if out < 0:
        raise ValueError(f'a memory budget cannot be negative, got {value}')
    return int(out)


class Stored:
    """A handle to one tensor in a :class:`CalibrationCache`."""

    __slots__ = ('shape', 'dtype', 'device', 'nbytes', '_tensor', '_path', '__weakref__')

    def __init__(self, shape, dtype, device, nbytes, tensor=None, path=None):
        self.shape, self.dtype, self.device, self.nbytes = shape, dtype, device, nbytes
        self._tensor, self._path = tensor, path

    @property
    def on_disk(self) -> bool:
        return self._path is not None

    def load(self, device=None) -> Tensor:
        """The stored tensor (read from its file if spilled), on ``device`` (default: where
        it came from)."""
        if self._tensor is not None:
            t = self._tensor
        else:
            t = torch.empty(self.shape, dtype=self.dtype)
            with open(self._path, 'rb') as f:
                f.readinto(memoryview(t.numpy()).cast('B'))
        return t.to(device if device is not None else self.device)


class CalibrationCache:
    """Tensors of one conversion: RAM up to ``budget`` bytes, the rest in files.

    Args:
        budget: bytes of tensors kept in RAM (``None``: no limit, nothing on disk;
            ``0``: everything on disk). Strings such as ``'4G'`` are accepted.
        root: directory in which the private spill directory is made (default:
            the system's temporary directory); created if missing.
    """

    def __init__(self, budget: Union[int, str, None] = None, root: Optional[str] = None):
        self.budget = parse_bytes(budget)
        self.root = root
        self.dir: Optional[str] = None
        self._created_root = False
        self._lock = threading.Lock()
        self._count = 0
        self.ram_bytes = 0
        self.disk_bytes = 0
        self.peak_ram_bytes = 0
        self.peak_disk_bytes = 0
        self.closed = False

    # -- storing ---------------------------------------------------------------
    def put(self, t: Tensor) -> Stored:
        """Store ``t`` (detached; the caller must not change it afterwards)."""
        if self.closed:
            raise RuntimeError('this calibration cache is closed')
        t = t.detach()
        nbytes = t.numel() * t.element_size()
        with self._lock:
            in_ram = self.budget is None or self.ram_bytes + nbytes <= self.budget
            if in_ram:
                self.ram_bytes += nbytes
                self.peak_ram_bytes = max(self.peak_ram_bytes, self.ram_bytes)
        if in_ram:
            cpu = t.cpu() if t.device.type != 'cpu' else t
            if heap.active() and nbytes >= heap.OFF_HEAP_MIN:
                # kept past this site: not on the heap that short-lived buffers reuse
                cpu = heap.off_heap_empty(t.shape, t.dtype).copy_(cpu)
            elif cpu.untyped_storage().nbytes() > nbytes or not cpu.is_contiguous():
                cpu = cpu.clone()       # a view must not keep a larger tensor alive
            entry = Stored(tuple(t.shape), t.dtype, t.device, nbytes, tensor=cpu)
            weakref.finalize(entry, self._release_ram, nbytes)
            return entry
        path = self._new_path()
        arr = t.cpu().contiguous().numpy()
        try:
            with open(path, 'wb') as f:
                arr.tofile(f)
        except BaseException:
            if os.path.exists(path):
                os.remove(path)
            raise
        with self._lock:
            self.disk_bytes += nbytes
            self.peak_disk_bytes = max(self.peak_disk_bytes, self.disk_bytes)
        entry = Stored(tuple(t.shape), t.dtype, t.device, nbytes, path=path)
        weakref.finalize(entry, self._release_file, path, nbytes)
        return entry

    def put_array(self, arr: np.ndarray) -> Stored:
        """Store a numpy array (e.g. packed spike bits) as a tensor."""
        return self.put(torch.from_numpy(np.ascontiguousarray(arr)))

    def _new_path(self) -> str:
        with self._lock:
            if self.dir is None:
                if self.root is not None and not os.path.isdir(self.root):
                    os.makedirs(self.root, exist_ok=True)
                    self._created_root = True
                self.dir = tempfile.mkdtemp(prefix='snn_det_calib_cache_', dir=self.root)
            self._count += 1
            return os.path.join(self.dir, f'{self._count:08d}.bin')

    def _release_ram(self, nbytes: int) -> None:
        with self._lock:
            self.ram_bytes -= nbytes

    def _release_file(self, path: str, nbytes: int) -> None:
        with self._lock:
            self.disk_bytes -= nbytes
        try:
            os.remove(path)
        except OSError:
            pass

    # -- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Remove the spill directory (and, if this cache created it, an empty root)."""
        self.closed = True
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self._created_root and self.root and os.path.isdir(self.root):
            try:
                os.rmdir(self.root)     # only if empty: never someone else's files
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self) -> str:
        budget = 'unlimited' if self.budget is None else format_bytes(self.budget)
        return (f'calibration cache: peak {format_bytes(self.peak_ram_bytes)} in RAM '
                f'(budget {budget}), peak {format_bytes(self.peak_disk_bytes)} on disk')

    def stats(self) -> dict:
        return dict(budget=self.budget, peak_ram_bytes=self.peak_ram_bytes,
                    peak_disk_bytes=self.peak_disk_bytes)
