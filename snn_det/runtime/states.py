"""A segment input stored exactly between calibration's passes, and images kept in a cache.

What a :class:`~snn_det.calibration.frontier.Frontier` holds for one calibration batch:
the ANN's analog input of a graph segment (stored as it is) and the SNN's per-chunk spike
input (in bits, :mod:`.spike_codes`), one tensor or a named state of them, in a
:class:`~.cache.CalibrationCache` (RAM up to its budget, files beyond), decoded one time
chunk at a time into buffers that nothing else holds any more.  Storage only: the
frontier decides what to store and when.
"""
import sys
from typing import List, Optional, Sequence

from torch import Tensor

from ..conversion.ops import _unshared
from .cache import CalibrationCache
from .spike_codes import Encoded, encode, store

__all__ = ['CachedImages', 'DecodedChunks', 'decode_state', 'store_state', 'state_nbytes']


def decode_state(stored, device, out=None):
    """A stored segment input: one tensor, or a named state (dict) of them; decoded into
    ``out`` (a tensor, or a dict of them by name) where it can be."""
    if isinstance(stored, dict):
        out = out if isinstance(out, dict) else {}
        return {k: e.decode(device, out.get(k)) for k, e in stored.items()}
    return stored.decode(device, out if isinstance(out, Tensor) else None)


def _free_buffer(t, refs: int = 1) -> Optional[Tensor]:
    """``t`` if nothing but the caller's ``refs`` names (its own, and the arguments that
    passed it on) holds it or any view of its memory, so it may be written over (the test
    by which neurons fire over their currents, :func:`~snn_det.conversion.ops._unshared`),
    else ``None``."""
    if not isinstance(t, Tensor):
        return None
    held = sys.getrefcount(t) - refs - 1    # other holders + this argument (as _unshared counts)
    return t if _unshared(t, held) else None


def _free_buffers(prev):
    """What of a decoded segment input (a tensor, or a named state that only the caller
    holds) nothing else holds any more: a tensor, a dict of them by name, or ``None``.
    ``prev`` is the caller's only name for it (the state is emptied)."""
    if not isinstance(prev, dict):
        return _free_buffer(prev, refs=2)
    if sys.getrefcount(prev) > 3:      # the state itself is still held elsewhere
        return None
    bufs = {}
    for k in list(prev):
        t = prev.pop(k)                # a tensor under two names is free at its last
        b = _free_buffer(t)
        del t
        if b is not None:
            bufs[k] = b
        del b
    return bufs


def state_nbytes(stored) -> int:
    if isinstance(stored, dict):
        return sum(e.nbytes for e in {id(e): e for e in stored.values()}.values())
    return stored.nbytes


def _as_items(stored, value) -> list:
    """``[(tensor, its stored code), ...]`` of a stored segment input and its decoding."""
    if stored is None or value is None:
        return []
    if isinstance(stored, dict):
        return [(value[k], e) for k, e in stored.items() if isinstance(value, dict) and k in value]
    return [(value, stored)]


def store_state(cache, value, prev=None, prev_value=None, last=None, spikes=True):
    """Store a segment input exactly: a tensor, or a named state whose entries are stored
    one by one.  An entry that is the very tensor decoded from ``prev`` (passed through
    the segment untouched) keeps its stored code, and one tensor under two names is
    stored once.  A residual stream (``x + s``) is stored as ``s`` plus the code of
    ``x`` (``prev``'s running tensor ``'x'`` when the segment input was a named state).
    ``spikes=False`` stores as it is (the ANN's analog tensors)."""
    known = {id(v): e for v, e in _as_items(prev, prev_value)}

    def one(v, p, pv):
        if id(v) in known:
            return known[id(v)]
        if not spikes:
            e = store(cache, v)
        else:
            if isinstance(p, dict):          # the block input of a named state
                p, pv = p.get('x'), pv.get('x') if isinstance(pv, dict) else None
            e = encode(cache, v, last, p, pv)
        known[id(v)] = e
        return e

    if not isinstance(value, dict):
        return one(value, prev, prev_value)
    prev_d = prev if isinstance(prev, dict) else {}
    pv_d = prev_value if isinstance(prev_value, dict) else {}
    if not isinstance(prev, dict) and prev is not None:
        prev_d, pv_d = {'x': prev}, {'x': prev_value}
    return {k: one(v, prev_d.get(k), pv_d.get(k)) for k, v in value.items()}


class DecodedChunks(Sequence):
    """The per-chunk spike inputs of a segment, decoded when a chunk is used."""

    def __init__(self, chunks: List[Encoded], device):
        self.chunks, self.device = chunks, device
        self.last = (None, None)          # (index, tensor) of the chunk decoded last

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, c: int) -> Tensor:
        if self.last[0] == c:
            return self.last[1]
        prev, self.last = self.last[1], (None, None)
        # the chunk decoded last, once its users have let it go, takes the next chunk:
        # decoding a K-step boundary into fresh memory costs ~6x the decode itself in
        # page faults (RetinaNet R50's stride-4 boundary at 800x1333: 0.55 GB per chunk)
        buf = _free_buffers(prev)
        del prev
        t = decode_state(self.chunks[c], self.device, buf)
        del buf
        self.last = (c, t)
        return t


class CachedImages(Sequence):
    """Calibration image batches kept in a :class:`CalibrationCache` (RAM up to its
    budget, files beyond), loaded when used, so that holding N images costs at most the
    budget.  At 800x1333 a preprocessed image is 12.9 MB of floats: 128 of them, 1.6 GB,
    would otherwise be the one term of calibration memory that grows with N."""

    def __init__(self, cache: CalibrationCache, batches=()):
        self.cache = cache
        self.items = []
        for b in batches:
            self.append(b)

    def append(self, batch: Tensor) -> None:
        self.items.append((self.cache.put(batch), batch.device))

    def stored(self, i: int):
        return self.items[i][0]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        handle, device = self.items[i]
        return handle.load(device)
