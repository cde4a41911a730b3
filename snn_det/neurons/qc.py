"""Quantized activations that train an ANN for its SNN (seeds 002 and 003).

* :class:`QCFS` -- quantization clip-floor-shift, seed 002 Eq. 15::

      h(z) = lambda * clip(floor(z L / lambda + phi) / L, 0, 1),   phi = 1/2

  with a trainable ``lambda`` and the gradients of Eq. 17.  Converting sets
  ``theta = lambda`` and ``v(0) = theta/2`` (Theorem 2).
* :class:`QCActivation` -- seed 003 Stage I: ``g_{theta,T}(x) = theta *
  clip(1/theta Q_{theta/T}(x), 0, 1)`` with ``Q_d(x) = d round(x/d)`` (Eq. 12),
  straight-through gradients (Eq. 13) and quantization noise (Eq. 14-15): in
  training a random fraction ``p`` of elements is quantized, the rest passes as
  identity.  For Leaky-ReLU sites the signed form of Eq. 22,
  ``theta * clip(1/theta [LeakyReLU(x)]_{theta/T}, -1, 1)``.

Both return values in the ANN's units (threshold times the normalized
activation), so the following layers' weights keep their meaning.
"""
import copy
from typing import Optional

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS

from .quantizers import round_ste


class _QCFSFunction(torch.autograd.Function):
    """Forward Eq. 15, backward Eq. 17 (w.r.t. z and lambda)."""

    @staticmethod
    def forward(ctx, z: Tensor, lam: Tensor, L: int, phi: float) -> Tensor:  # noqa: D102
        lam_b = lam.reshape(1, -1, *([1] * (z.dim() - 2))) if lam.numel() > 1 else lam
        h = lam_b * torch.clamp(torch.floor(z * L / lam_b + phi) / L, 0, 1)
        ctx.save_for_backward(z, lam_b, h)
        ctx.L, ctx.lam_shape = L, lam.shape
        return h

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        z, lam, h = ctx.saved_tensors
        L = ctx.L
        lo = -lam / (2 * L)
        hi = lam - lam / (2 * L)
        inside = (z >= lo) & (z < hi)
        above = z >= hi
        gz = grad * inside.to(grad.dtype)
        dlam = torch.where(inside, (h - z) / lam, above.to(grad.dtype))
        gl = grad * dlam
        if len(ctx.lam_shape) and ctx.lam_shape.numel() > 1:
            gl = gl.sum(dim=[d for d in range(gl.dim()) if d != 1])
        else:
            gl = gl.sum()
        return gz, gl.reshape(ctx.lam_shape), None, None


def qcfs(z: Tensor, lam: Tensor, L: int, phi: float = 0.5) -> Tensor:
    """Functional QCFS (seed 002 Eq. 15 / 17)."""
    return _QCFSFunction.apply(z, lam, L, phi)


@MODELS.register_module()
class QCFS(nn.Module):
    """QCFS activation with a trainable threshold ``lambda`` (seed 002)."""

    def __init__(self, L: int = 8, init_threshold: float = 8.0, shift: float = 0.5,
                 negative_slope: Optional[float] = None):
        super().__init__()
        if negative_slope is not None:
            raise ValueError('QCFS is defined for ReLU sites; use QCActivation for Leaky-ReLU')
        self.L, self.shift = int(L), float(shift)
        self.threshold = nn.Parameter(torch.tensor(float(init_threshold)))
        self.register_buffer('initialized', torch.tensor(False))

    def forward(self, z: Tensor) -> Tensor:
        return qcfs(z, self.threshold, self.L, self.shift)

    def spiking_threshold(self, channel_wise: bool = False) -> Tensor:
        return self.threshold.detach().abs().reshape(1, 1, 1, 1)

    def extra_repr(self) -> str:
        return f'L={self.L}, shift={self.shift}'


def _clip(q: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """clip with the straight-through gradient on the closed range [lo, hi]."""
    return torch.where(q < lo, lo.expand_as(q), torch.where(q > hi, hi.expand_as(q), q))


@MODELS.register_module()
class QCActivation(nn.Module):
    """QC function with quantization noise for Stage-I fine-tuning (seed 003)."""

    def __init__(self, T: int = 8, init_threshold: float = 8.0, p: float = 0.1,
                 negative_slope: Optional[float] = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f'noise probability p must be in [0, 1], got {p}')
        self.T, self.p = int(T), float(p)
        self.negative_slope = negative_slope
        self.threshold = nn.Parameter(torch.tensor(float(init_threshold)))
        self.register_buffer('initialized', torch.tensor(False))

    def quantize(self, x: Tensor, theta: Tensor) -> Tensor:
        """Q_{theta/T}(x) of Eq. 12 with the noise of Eq. 14 when training."""
        d = theta / self.T
        q = d * round_ste(x / d)                                 # STE, Eq. 13
        if self.training and self.p < 1.0:
            mask = (torch.rand_like(x) < self.p).to(x.dtype)      # M ~ Bernoulli(p)
            q = x + (q - x) * mask                                # Eq. 14
        return q

    def forward(self, x: Tensor) -> Tensor:
        theta = self.threshold.abs() + 1e-8
        if self.negative_slope is not None:
            y = torch.where(x >= 0, x, x * self.negative_slope)
            return _clip(self.quantize(y, theta), -theta, theta)
        return _clip(self.quantize(x, theta), torch.zeros_like(theta), theta)

    def spiking_threshold(self, channel_wise: bool = False) -> Tensor:
        return self.threshold.detach().abs().reshape(1, 1, 1, 1)

    def at_time_steps(self, T: int) -> 'QCActivation':
        """The calibration target of an SNN with T steps: g_{theta,max(T, T')}.

        Stage II aligns the SNN with the QC-ANN (seed 003 Algorithm 1), which was
        fine-tuned for some T'.  At T > T' the target is quantized at the SNN's own,
        finer T (same trained theta): IF neurons with the theta/2T shift compute
        exactly that (Theorem 1), while pulling them onto the coarser theta/T' grid
        costs accuracy (YOLOv3, T'=8 model at T=16: 37.3 -> 44.2 mAP).  At T < T' the
        target stays the QC-ANN's own g_{theta,T'}, the activations its later layers
        were trained on (classifier, T'=16 model at T=4: 75.2 vs 73.0 top-1 with
        g_{theta,4}).
        """
        if int(T) <= self.T:
            return self
        other = copy.copy(self)          # shallow: shares the threshold parameter
        other.T = int(T)
        return other

    def extra_repr(self) -> str:
        return f'T={self.T}, p={self.p}, negative_slope={self.negative_slope}'


def build_site_activation(act_cfg: dict, site, T: int) -> nn.Module:
    """One QC / QCFS module for an activation site (signed for Leaky-ReLU sites)."""
    cfg = dict(act_cfg)
    kind = cfg.pop('type')
    if kind == 'QCFS':
        cfg.setdefault('L', T)
        if site.signed:
            raise ValueError(f"site '{site.name}' is Leaky-ReLU: use type='QCActivation'")
        return QCFS(**cfg)
    if kind == 'QCActivation':
        cfg.setdefault('T', T)
        cfg.setdefault('negative_slope', site.negative_slope)
        return QCActivation(**cfg)
    raise KeyError(f"unknown site activation type '{kind}' (QCFS or QCActivation)")
