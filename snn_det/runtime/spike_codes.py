"""Spike trains stored exactly in bits (what calibration caches hold at scale).

An IF site (seed 001 Eq. 2-4) emits ``theta_c s[t]`` with ``s`` in {0, 1}; a
signed site (seed 003 Eq. 22) emits ``theta_c q[t]`` with ``q`` in {-1, 0, 1}.
Such a tensor is stored as its per-channel ``theta`` (C numbers) and one bit
plane per sign, packed eight neuron-steps to a byte: 1 bit per element (IF) or
2 (signed) instead of 32.  Darknet's residual stream is a sum of trains
(``x_{k+1} = s_k + x_k``); it is stored as the list of its terms and decoded
with the additions in the forward's order, so it too comes back bit for bit.

Every encoding is checked by decoding it and comparing the bits with the
original; a tensor that is not such a train (an analog input, NaN/Inf, a sum
whose terms would take more bits than float) is stored as it is.  Decoding
therefore always returns exactly the tensor that was encoded.

On a GPU the bits are packed and unpacked there, so only the packed bytes cross to
the host.  On the CPU both directions run as compiled kernels (``torch.ops.snn_det.spike_encode``
/ ``spike_decode``: one pass to decode, two to encode and check, instead of ~10 tensor
operations); ``SNN_DET_FUSED=0`` or a build without them uses the torch / numpy code
below, which gives the same codes and the same decoded bits (tested).
"""
from typing import List, Optional

import numpy as np
import torch
from torch import Tensor

from ..neurons.if_neuron import fused_available, step_format
from .cache import CalibrationCache, Stored

_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64,
             torch.float16: torch.int16, torch.bfloat16: torch.int16}


def bitwise_equal(a: Tensor, b: Tensor) -> bool:
    """Same shape, dtype and bits (``-0.0`` differs from ``0.0``; equal NaNs match)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    view = _INT_VIEW.get(a.dtype)
    if view is None:
        return torch.equal(a, b)
    return torch.equal(a.contiguous().view(view), b.contiguous().view(view))


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is a 4-d tensor laid out channels last (and not also contiguous):
    calibration with ``channels_last=True`` keeps its tensors so, and they are stored in
    that memory order (as ``N, H, W, C``), so that nothing is copied to store or decode them."""
    return x.dim() == 4 and step_format(x) == torch.channels_last


def _bit_weights(device) -> Tensor:
    """``[1, 2, 4, ..., 128]``: element ``i`` of a group of eight is bit ``i`` of its byte
    (numpy's ``bitorder='little'``)."""
    return torch.tensor([1 << i for i in range(8)], dtype=torch.uint8, device=device)


def _pack(mask: Tensor) -> np.ndarray:
    """Eight booleans to a byte, little bit order.  A mask on a GPU is packed there (only
    the packed bytes, 1/8 of the mask, cross to the host); on the CPU by numpy.  Both give
    the same bytes (tested)."""
    flat = mask.reshape(-1)
    if flat.device.type == 'cpu':
        return np.packbits(flat.numpy(), bitorder='little')
    return _pack_torch(flat).cpu().numpy()


def _pack_torch(flat: Tensor) -> Tensor:
    """``np.packbits(flat, bitorder='little')`` with torch operations, on ``flat``'s device."""
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return (flat.view(-1, 8).to(torch.uint8) * _bit_weights(flat.device)).sum(
        1, dtype=torch.uint8)


def _unpack(packed: Tensor, numel: int, shape, dtype, device) -> Tensor:
    """The bits of ``packed`` (a CPU byte tensor) as a tensor of ``dtype`` on ``device``:
    unpacked by numpy for the CPU, on the GPU for a GPU (only the packed bytes cross)."""
    if torch.device(device).type == 'cpu':
        bits = np.unpackbits(packed.numpy(), count=numel, bitorder='little')
        return torch.from_numpy(bits).reshape(shape).to(device=device, dtype=dtype)
    return _unpack_torch(packed.to(device), numel).reshape(shape).to(dtype)


def _unpack_torch(packed: Tensor, numel: int) -> Tensor:
    """``np.unpackbits(packed, count=numel, bitorder='little')`` with torch operations."""
    bits = packed.reshape(-1, 1).bitwise_and(_bit_weights(packed.device)).ne_(0)
    return bits.reshape(-1)[:numel]


def _kernels(dtype, device) -> bool:
    """Whether the compiled encoder / decoder handle this dtype on this device."""
    return (torch.device(device).type == 'cpu' and dtype in (torch.float32, torch.float64)
            and fused_available() and hasattr(torch.ops.snn_det, 'spike_encode'))


class SpikeTerm:
    """``theta (pos - neg)`` with ``pos`` / ``neg`` as packed bit planes in a cache."""

    def __init__(self, theta: Tensor, pos: Stored, neg: Optional[Stored], shape, numel: int,
                 channel_dim: int = 1, channels_last: bool = False):
        self.theta, self.pos, self.neg = theta, pos, neg
        self.shape, self.numel, self.channel_dim = shape, numel, channel_dim
        # stored in the memory order of a channels-last tensor (``shape`` is N, H, W, C) and
        # decoded back into that layout, as an N, C, H, W view
        self.channels_last = channels_last

    @property
    def nbytes(self) -> int:
        return self.pos.nbytes + (self.neg.nbytes if self.neg is not None else 0)

    def decode(self, dtype, device, out: Optional[Tensor] = None) -> Tensor:
        """The train, bit for bit; the compiled decoder writes it into ``out`` when that is
        a tensor of its shape, layout and dtype on the CPU (no fresh pages to fault in),
        else into a new tensor."""
        if not self.channels_last:
            return self._decode(dtype, device, out)
        out = out.permute(0, 2, 3, 1) if out is not None and is_channels_last(out) else None
        return self._decode(dtype, device, out).permute(0, 3, 1, 2)

    def _decode(self, dtype, device, out: Optional[Tensor] = None) -> Tensor:
        # the same operations as the neurons: mul(fired, theta) / (pos - neg) * theta
        if _kernels(dtype, device) and self.theta.dtype == dtype:
            if out is not None and not (out.shape == self.shape and out.dtype == dtype
                                        and out.device.type == 'cpu' and out.is_contiguous()):
                out = None
            return torch.ops.snn_det.spike_decode(
                self.pos.load('cpu'), self.neg.load('cpu') if self.neg is not None else None,
                self.theta.reshape(-1), list(self.shape), self.channel_dim, out)
        theta = self.theta.to(device)
        p = _unpack(self.pos.load('cpu'), self.numel, self.shape, dtype, device)
        if self.neg is not None:
            p.sub_(_unpack(self.neg.load('cpu'), self.numel, self.shape, dtype, device))
        return p.mul_(theta)


def _slices(x: Tensor, max_elems: int = 1 << 24):
    """Slices of ``x`` along dim 0 of at most ~``max_elems`` elements (bounded temporaries)."""
    step = max(1, max_elems // max(1, x[0].numel())) if x.shape[0] else 1
    return [slice(i, i + step) for i in range(0, x.shape[0], step)]


def spike_term(cache: CalibrationCache, x: Tensor, channel_dim: int = 1) -> Optional[SpikeTerm]:
    """Encode ``x`` as one spike train with one threshold per index of ``channel_dim``,
    or return ``None`` if it is not one.  A channels-last ``x`` is encoded in its memory
    order (no copy) and decodes to that layout."""
    if channel_dim == 1 and is_channels_last(x):
        term = spike_term(cache, x.permute(0, 2, 3, 1), 3)
        if term is not None:
            term.channels_last = True
        return term
    if x.dim() <= channel_dim or x.dtype not in _INT_VIEW or x.numel() == 0:
        return None
    if _kernels(x.dtype, x.device):
        theta, pos, neg, has_neg, ok = torch.ops.snn_det.spike_encode(x.contiguous(),
                                                                      channel_dim)
        if not ok:
            return None
        shape = [1] * x.dim()
        shape[channel_dim] = x.shape[channel_dim]
        return SpikeTerm(theta.reshape(shape), cache.put(pos),
                         cache.put(neg) if has_neg else None, tuple(x.shape), x.numel(),
                         channel_dim)
    dims = [d for d in range(x.dim()) if d != channel_dim]
    parts = _slices(x)
    theta = None
    for sl in parts:      # theta_c = max |x| over everything but the channel
        m = x[sl].abs().amax(dim=dims, keepdim=True)
        theta = m if theta is None else torch.maximum(theta, m)
    if not bool(torch.isfinite(theta).all()):
        return None
    pos, neg = x > 0, x < 0
    has_neg = bool(neg.any())
    for sl in parts:      # decode as the neurons compute their output, compare the bits
        decoded = pos[sl].to(x.dtype)
        if has_neg:
            decoded.sub_(neg[sl].to(x.dtype))
        if not bitwise_equal(decoded.mul_(theta), x[sl]):
            return None
    del decoded
    return SpikeTerm(theta.detach().cpu(), cache.put_array(_pack(pos)),
                     cache.put_array(_pack(neg)) if has_neg else None,
                     tuple(x.shape), x.numel(), channel_dim)


class Encoded:
    """One tensor held exactly in a cache: a sum of spike trains, or as it is.

    ``terms = [s_k, ..., s_0]`` decodes as ``s_k + (s_{k-1} + (... + s_0))``.
    """

    def __init__(self, shape, dtype, device, terms: Optional[List[SpikeTerm]] = None,
                 raw: Optional[Stored] = None, raw_channels_last: bool = False):
        self.shape, self.dtype, self.device = tuple(shape), dtype, device
        self.terms, self.raw = terms, raw
        self.raw_channels_last = raw_channels_last   # ``raw`` holds N, H, W, C (see _put_raw)

    @property
    def is_spikes(self) -> bool:
        return self.terms is not None

    @property
    def nbytes(self) -> int:
        return self.raw.nbytes if self.raw is not None else sum(t.nbytes for t in self.terms)

    def decode(self, device=None, out: Optional[Tensor] = None) -> Tensor:
        """The tensor that was encoded, bit for bit.  ``out`` is a buffer the caller no
        longer needs; a spike train may be decoded into it (see :meth:`SpikeTerm.decode`)."""
        device = self.device if device is None else device
        if self.raw is not None:
            t = self.raw.load(device)
            return t.permute(0, 3, 1, 2) if self.raw_channels_last else t
        value = self.terms[-1].decode(self.dtype, device, out)
        for term in reversed(self.terms[:-1]):
            value.add_(term.decode(self.dtype, device))   # s_k + (...): IEEE + commutes
        return value


def encode(cache: CalibrationCache, x: Tensor, last: Optional[Tensor] = None,
           prev: Optional[Encoded] = None, prev_value: Optional[Tensor] = None,
           channel_dim: int = 1) -> Encoded:
    """Store ``x`` exactly, as compactly as it allows.

    ``x`` is tried as one spike train; failing that, if ``last`` (the spike train
    of the last site before ``x``) and ``prev`` / ``prev_value`` (the stored and
    decoded tensor ``x`` was computed from) are given, as ``last + prev`` -- a
    residual stream; failing that it is stored as it is.  ``channel_dim`` is the
    dimension of the channels (thresholds are per channel).
    """
    x = x.detach()
    term = spike_term(cache, x, channel_dim)
    if term is not None:
        return Encoded(x.shape, x.dtype, x.device, terms=[term])
    if (last is not None and prev is not None and prev.is_spikes and prev_value is not None
            and last.shape == x.shape and prev_value.shape == x.shape):
        float_bytes = x.numel() * x.element_size()
        t_last = spike_term(cache, last, channel_dim)
        if (t_last is not None and t_last.nbytes + prev.nbytes < float_bytes
                and bitwise_equal(t_last.decode(x.dtype, x.device) + prev_value, x)):
            return Encoded(x.shape, x.dtype, x.device, terms=[t_last] + list(prev.terms))
    return _raw(cache, x)


def _raw(cache: CalibrationCache, x: Tensor) -> Encoded:
    """``x`` stored as it is, in its memory order: a channels-last tensor as N, H, W, C
    (decoded back to that layout), anything else contiguous."""
    if is_channels_last(x):
        return Encoded(x.shape, x.dtype, x.device, raw=cache.put(x.permute(0, 2, 3, 1)),
                       raw_channels_last=True)
    return Encoded(x.shape, x.dtype, x.device, raw=cache.put(x))


def store(cache: CalibrationCache, x: Tensor) -> Encoded:
    """Store ``x`` as it is (an analog tensor)."""
    return _raw(cache, x.detach())
