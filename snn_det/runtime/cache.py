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

Spike trains are stored exactly in bits (:mod:`snn_det.runtime.spike_codes`)
before they reach the cache, so the budget goes 32x further for them.  Convolution
products kept between calibration's two passes (:mod:`snn_det.runtime.currents`)
are floats; they are kept only while :meth:`CalibrationCache.room_for_currents` says
they fit its ``current_limit``.
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

from ..utils.memory import available_bytes, format_bytes, free_disk_bytes  # noqa: F401

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


def parse_current_limit(value) -> Union[str, int, None]:
    """``'auto'`` as it is, else a size as :func:`parse_bytes` reads it."""
    if isinstance(value, str) and value.strip().lower() == 'auto':
        return 'auto'
    return parse_bytes(value)


#: a spilled tensor is written in files of at most this many bytes, so that any file a
#: released tensor leaves can take a piece of the next one, whatever its size
PIECE_BYTES = 64 << 20
#: released files are kept to be written over, up to the largest of: this fraction of
#: the cache's peak disk use, its peak of kept convolution products, FILE_POOL_MIN
#: bytes; they count as disk used
FILE_POOL_FRACTION = 0.25
FILE_POOL_MIN = 1 << 30


class Stored:
    """A handle to one tensor in a :class:`CalibrationCache`."""

    __slots__ = ('shape', 'dtype', 'device', 'nbytes', '_tensor', '_files', '__weakref__')

    def __init__(self, shape, dtype, device, nbytes, tensor=None, files=None):
        self.shape, self.dtype, self.device, self.nbytes = shape, dtype, device, nbytes
        self._tensor, self._files = tensor, files    # files: ((path, file size), ...)

    @property
    def on_disk(self) -> bool:
        return self._files is not None

    def load(self, device=None) -> Tensor:
        """The stored tensor (read from its files if spilled), on ``device`` (default:
        where it came from)."""
        if self._tensor is not None:
            t = self._tensor
        else:
            t = torch.empty(self.shape, dtype=self.dtype)
            buf = memoryview(t.numpy()).cast('B') if self.nbytes else memoryview(b'')
            for i, (path, _) in enumerate(self._files):
                with open(path, 'rb') as f:
                    f.readinto(buf[i * PIECE_BYTES:(i + 1) * PIECE_BYTES])
        return t.to(device if device is not None else self.device)


class CalibrationCache:
    """Tensors of one conversion: RAM up to ``budget`` bytes, the rest in files.

    Args:
        budget: bytes of tensors kept in RAM (``None``: no limit, nothing on disk;
            ``0``: everything on disk). Strings such as ``'4G'`` are accepted.
        root: directory in which the private spill directory is made (default:
            the system's temporary directory); created if missing.
        current_limit: bytes of convolution products kept between calibration's two
            passes (RAM within ``budget``, files beyond; ``None``: no limit),
            ``'auto'`` (default: half the disk the cache may use, see
            :meth:`room_for_currents`) or ``0`` (none kept: every product recomputed).
    """

    def __init__(self, budget: Union[int, str, None] = None, root: Optional[str] = None,
                 current_limit: Union[int, str, None] = 'auto'):
        self.budget = parse_bytes(budget)
        self.root = root
        self.current_limit = parse_current_limit(current_limit)   # None: no limit
        self.current_bytes = 0
        self.peak_current_bytes = 0
        self._pool = []            # (path, size) of spill files kept to be written over
        self.pool_bytes = 0
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
    def put(self, t: Tensor, copy: bool = False, kind: Optional[str] = None) -> Stored:
        """Store ``t`` (detached; the caller must not change it afterwards, unless
        ``copy``: then what is kept is a copy).  ``kind='currents'`` counts it against
        :meth:`room_for_currents`."""
        entry = self._put(t, copy)
        if kind == 'currents':
            with self._lock:
                self.current_bytes += entry.nbytes
                self.peak_current_bytes = max(self.peak_current_bytes, self.current_bytes)
            weakref.finalize(entry, self._release_currents, entry.nbytes)
        return entry

    def room_for_currents(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more of kept convolution products fit: all kept products
        together stay within ``current_limit`` bytes, or with ``'auto'`` within half the
        disk this cache may use where its files go (free now, plus its pooled files and
        the products it keeps) plus the budget's free RAM; with no budget, within a
        quarter of the free RAM."""
        if self.closed:
            return False
        limit = self.current_limit
        if limit is None:
            return True
        if limit != 'auto':
            return self.current_bytes + nbytes <= limit
        if self.budget is None:
            return self.current_bytes + nbytes <= (available_bytes() or 0) // 4
        free = free_disk_bytes(self.dir or self.root) or 0
        usable = free + self.pool_bytes + self.current_bytes
        return self.current_bytes + nbytes <= usable // 2 + max(self.budget - self.ram_bytes, 0)

    def _release_currents(self, nbytes: int) -> None:
        with self._lock:
            self.current_bytes -= nbytes

    def _put(self, t: Tensor, copy: bool) -> Stored:
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
            if copy or cpu.untyped_storage().nbytes() > nbytes or not cpu.is_contiguous():
                # a copy, or a view must not keep a larger tensor alive
                cpu = cpu.clone(memory_format=torch.contiguous_format)
            entry = Stored(tuple(t.shape), t.dtype, t.device, nbytes, tensor=cpu)
            weakref.finalize(entry, self._release_ram, nbytes)
            return entry
        arr = t.cpu().contiguous().numpy()
        data = memoryview(arr).cast('B') if nbytes else memoryview(b'')
        files = []
        try:
            for off in range(0, max(nbytes, 1), PIECE_BYTES):
                piece = data[off:off + PIECE_BYTES]
                path, size = self._file_for(len(piece))
                try:
                    # a pooled file is written over, not truncated: its pages stay in
                    # the page cache
                    with open(path, 'r+b' if size else 'wb') as f:
                        f.write(piece)
                except BaseException:
                    files.append((path, size))
                    raise
                files.append((path, max(size, len(piece))))
                with self._lock:
                    self.disk_bytes += max(size, len(piece)) - size
                    self.peak_disk_bytes = max(self.peak_disk_bytes, self.disk_bytes)
        except BaseException:
            for path, size in files:
                if os.path.exists(path):
                    os.remove(path)
                with self._lock:
                    self.disk_bytes -= size
            raise
        entry = Stored(tuple(t.shape), t.dtype, t.device, nbytes, files=tuple(files))
        weakref.finalize(entry, self._release_files, entry._files)
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

    def _file_for(self, nbytes: int):
        """A file to write ``nbytes`` into: the smallest pooled one that holds them and
        is at most twice their size, with its size (``(path, size)``), else a new path
        (size 0)."""
        with self._lock:
            fits = [i for i, (_, size) in enumerate(self._pool) if nbytes <= size <= 2 * nbytes]
            if fits:
                i = min(fits, key=lambda j: (self._pool[j][1], -j))   # smallest, newest
                path, size = self._pool.pop(i)
                self.pool_bytes -= size
                return path, size
        return self._new_path(), 0

    def _release_files(self, files) -> None:
        """Files no handle needs: kept in the pool of files to write over (oldest out
        first beyond its cap, see :data:`FILE_POOL_FRACTION`), else deleted.  Writing
        over a file whose pages are in the page cache costs a copy; a new file's pages
        are memory the kernel must find and fill (ad hoc on this 2-core VM: 275 MB at
        ~200 MB/s into new files, ~9 GB/s into pages just freed)."""
        drop = []
        with self._lock:
            if self.closed:
                for path, size in files:
                    self.disk_bytes -= size
                    drop.append(path)
            else:
                for path, size in files:
                    self._pool.append((path, size))
                    self.pool_bytes += size
                cap = max(FILE_POOL_MIN, self.peak_current_bytes,
                          int(FILE_POOL_FRACTION * self.peak_disk_bytes))
                while self.pool_bytes > cap and self._pool:
                    old, size = self._pool.pop(0)
                    self.pool_bytes -= size
                    self.disk_bytes -= size
                    drop.append(old)
        for p in drop:
            try:
                os.remove(p)
            except OSError:
                pass

    # -- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Remove the spill directory (and, if this cache created it, an empty root)."""
        self.closed = True
        with self._lock:
            self._pool, self.pool_bytes = [], 0
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
                    peak_disk_bytes=self.peak_disk_bytes,
                    peak_current_bytes=self.peak_current_bytes)
