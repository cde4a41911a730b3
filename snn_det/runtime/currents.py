"""Keeping a site's convolution products between layer-wise calibration's two passes.

Layer-wise calibration (seed 001 Algo. 2) runs each segment twice on the same input:
once to observe the site's error ``e = x - s_bar`` at the old parameters (Eq. 19),
and once, after the bias (Eq. 20) or the initial potential has been corrected, to move
the calibration frontier on (:meth:`~snn_det.calibration.frontier.Frontier.advance`).
Both times the convolution owning the site computes the same product ``W * s[t]``
of the same spike trains; only its bias has changed.  The spiking network adds a
convolution's bias after the product (:class:`~snn_det.conversion.ops.BiasAfterConv2d`),
so the product kept from the first pass plus the corrected bias is the second pass's
current bit for bit, and the second convolution is not needed.

A product is ``T x B x C x H x W`` floats, 32x a spike train, so it is kept only where
computing it costs more than writing and reading it back: at least
:data:`REUSE_MIN_MACS` multiply-adds per output element (a 3x3 convolution on 64
channels makes 576, a 1x1 one on 256 channels 256; a 1x1 one on 64 channels is
recomputed), and only while a frontier's products fit the calibration cache's
``current_limit`` (:meth:`~snn_det.runtime.cache.CalibrationCache.room_for_currents`):
in RAM within the cache's budget, in files beyond it, released chunk by chunk as the
second pass reads them.  A product whose convolution weight changed in between (weight
or fine calibration) is not used.
"""
from math import prod
from typing import List, Optional

import torch
from torch import Tensor, nn

from .cache import CalibrationCache, Stored

#: multiply-adds per output element from which a convolution's product is kept
REUSE_MIN_MACS = 256


def macs_per_output(conv: nn.Conv2d) -> int:
    """Multiply-adds of one output element of ``conv``: ``C_in / groups x kH x kW``."""
    return conv.in_channels // conv.groups * prod(conv.kernel_size)


def keeps_products_of(conv: nn.Conv2d) -> bool:
    """Whether calibration keeps ``conv``'s products between a site's two passes."""
    return macs_per_output(conv) >= REUSE_MIN_MACS


def _weight_token(conv: nn.Conv2d):
    w = conv.weight
    return w.data_ptr(), w._version


def _channels_last(z: Tensor) -> bool:
    return z.dim() == 4 and not z.is_contiguous() \
        and z.is_contiguous(memory_format=torch.channels_last)


class KeptCurrents:
    """One frontier's products of ``path`` over one pass of its segment, per time chunk.

    Made by the first pass (:meth:`keep`, through :class:`ChunkCurrents`), used once by
    the second (:meth:`take`)."""

    def __init__(self, path: str, conv: nn.Conv2d, cache: CalibrationCache, n_chunks: int):
        self.path, self.cache, self.n_chunks = path, cache, n_chunks
        self.token = _weight_token(conv)
        self.chunks: List[Optional[Stored]] = []
        self.layouts: List[bool] = []
        self.refused = not keeps_products_of(conv)

    def keep(self, c: int, z: Tensor) -> None:
        """Store chunk ``c``'s product ``z`` (copied: the caller adds its bias in place)."""
        if self.refused or c != len(self.chunks):
            self.refused = True
            return
        if c == 0 and not self.cache.room_for_currents(
                z.numel() * z.element_size() * self.n_chunks):
            self.refused = True
            return
        cl = _channels_last(z)
        self.chunks.append(self.cache.put(z.permute(0, 2, 3, 1) if cl else z, copy=True,
                                          kind='currents'))
        self.layouts.append(cl)

    def usable(self, path: str, conv: nn.Conv2d, n_chunks: int) -> bool:
        return (not self.refused and path == self.path and n_chunks == self.n_chunks
                and len(self.chunks) == n_chunks and _weight_token(conv) == self.token)

    def take(self, c: int, device) -> Optional[Tensor]:
        """Chunk ``c``'s product, which the caller owns (its handle is let go: its RAM
        or files released as soon as it is read).  A channels-last product comes back as
        a tensor of its own on the stored memory, not a view, so that a neuron may fire
        over it (:func:`~snn_det.conversion.ops._unshared`)."""
        stored, self.chunks[c] = self.chunks[c], None
        if stored is None:
            return None
        z = stored.load(device)
        del stored
        if not self.layouts[c]:
            return z
        n, h, w, ch = z.shape
        out = z.new_empty(0).set_(z.untyped_storage(), z.storage_offset(), (n, ch, h, w),
                                  (h * w * ch, 1, w * ch, ch))
        del z
        return out


class ChunkCurrents:
    """What :class:`~snn_det.conversion.ops.SnnOps` asks for one time chunk: the kept
    product of a convolution (``replay``), or where to keep one (``keep``)."""

    def __init__(self, c: int, keep: Optional[KeptCurrents] = None,
                 replay: Optional[KeptCurrents] = None):
        self.c, self._keep, self._replay = c, keep, replay

    def product(self, path: str, conv: nn.Conv2d, batch: int, device) -> Optional[Tensor]:
        """The kept product of ``conv`` for this chunk (once), or ``None``: compute it."""
        r = self._replay       # checked usable (same weight, same chunking) for this move
        if r is None or path != r.path:
            return None
        z = r.take(self.c, device)
        return z if z is not None and z.shape[:2] == (batch, conv.out_channels) else None

    def computed(self, path: str, z: Tensor) -> None:
        """``conv``'s product ``z`` was computed for this chunk: keep it if asked to."""
        k = self._keep
        if k is not None and path == k.path:
            k.keep(self.c, z)
