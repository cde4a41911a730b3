"""Firing thresholds from observed ANN activations (seed 001 Sec. 4.3, Algo. 1).

Observe, then choose (as ``torch.ao.quantization`` separates observers from
the conversion): :class:`ActivationObserver` watches the input current z of one
site in the ANN on the calibration images; :func:`choose_threshold` then picks

* ``max``: the maximum activation,
* ``percentile``: the p-th percentile of the positive activations
  (Rueckauer et al.; e.g. 99.99),
* ``mmse``: Algo. 1 -- N grid points ``j/N * max`` and the one minimizing
  ``|| ClipRound(z; T, theta) - ReLU(z) ||^2`` (Eq. 18; ClipFloor without the
  shift, the signed QC function of seed 003 Eq. 22 for Leaky-ReLU sites), the
  errors summed by a fused C++ kernel on the CPU (one pass over the samples per
  candidate instead of ~8 full-size tensor operations; eight samples at a time on
  AVX2 CPUs, the same errors bit for bit),

per layer (one value) or per channel.  Percentile and MMSE use a bounded,
seeded random subsample of the activations (``max`` is exact), so statistics
of detection-sized feature maps stay cheap.
"""
from typing import Optional

import torch
from torch import Tensor

from ..neurons.quantizers import rate_function

THRESHOLD_METHODS = ('max', 'percentile', 'mmse')


class ActivationObserver:
    """Running statistics of one site's input current ``z`` (shape ``[B, C, H, W]``)."""

    def __init__(self, channels: int, negative_slope: Optional[float] = None,
                 max_samples: int = 1 << 22, seed: int = 0):
        self.channels = channels
        self.negative_slope = negative_slope
        self.per_channel = max(256, max_samples // max(channels, 1))
        self.generator = torch.Generator().manual_seed(seed)
        self.max = torch.zeros(channels)
        self.samples: Optional[Tensor] = None     # [C, n] raw z values
        self.count = 0
        self.largest_batch = 0                    # elements of the largest batch seen

    def activation(self, z: Tensor) -> Tensor:
        """The ANN activation of the site (ReLU or Leaky-ReLU) -- the target."""
        if self.negative_slope is None:
            return torch.relu(z)
        return torch.where(z >= 0, z, z * self.negative_slope)

    @torch.no_grad()
    def update(self, z: Tensor) -> None:
        self.largest_batch = max(self.largest_batch, z.numel())
        z = z.detach().float().transpose(0, 1).reshape(self.channels, -1).cpu()
        y = self.activation(z).abs()
        self.max = torch.maximum(self.max, y.amax(dim=1))
        n = z.shape[1]
        take = min(n, self.per_channel)
        idx = torch.randperm(n, generator=self.generator)[:take]
        part = z[:, idx]
        self.samples = part if self.samples is None else torch.cat([self.samples, part], 1)
        if self.samples.shape[1] > self.per_channel:
            keep = torch.randperm(self.samples.shape[1], generator=self.generator)
            self.samples = self.samples[:, keep[:self.per_channel]]
        self.count += n


def _percentile(obs: ActivationObserver, p: float, channel_wise: bool) -> Tensor:
    y = obs.activation(obs.samples).abs()
    y = torch.where(y > 0, y, torch.full_like(y, float('nan')))
    q = p / 100.0
    if channel_wise:
        return torch.nanquantile(y, q, dim=1)
    flat = y.reshape(-1)
    if flat.numel() > (1 << 24):
        flat = flat[torch.randperm(flat.numel(), generator=obs.generator)[:1 << 24]]
    return torch.nanquantile(flat, q).reshape(1)


def _mmse(obs: ActivationObserver, T: int, grid: int, channel_wise: bool,
          rounding: bool) -> Tensor:
    z = obs.samples
    if not channel_wise:
        z = z.reshape(-1)
        if z.numel() > (1 << 18):
            z = z[torch.randperm(z.numel(), generator=obs.generator)[:1 << 18]]
        z = z.reshape(1, -1)
        top = obs.max.max().reshape(1)
    else:
        top = obs.max
    target = obs.activation(z)
    fracs = torch.arange(1, grid + 1, dtype=torch.float32) / grid
    if _fused_mmse_available(z):
        thetas = (top[:, None] * fracs[None, :]).clamp_min(1e-12).contiguous()   # [C, N]
        mode = (0 if not rounding else 1) if obs.negative_slope is None else \
            (2 if not rounding else 3)
        err = torch.ops.snn_det.mmse_errors(z.float().contiguous(), target.float().contiguous(),
                                            thetas, int(T), mode,
                                            float(obs.negative_slope or 0.0))
        return thetas.gather(1, err.argmin(dim=1, keepdim=True))[:, 0]
    best = torch.empty(z.shape[0])
    step = max(1, (1 << 25) // max(grid * z.shape[1], 1))
    for c0 in range(0, z.shape[0], step):
        zc, tc = z[c0:c0 + step, None, :], target[c0:c0 + step, None, :]
        thetas = (top[c0:c0 + step, None] * fracs[None, :]).clamp_min(1e-12)  # [c, N]
        q = rate_function(zc, T, thetas[..., None], rounding, obs.negative_slope)
        mse = ((q - tc) ** 2).mean(dim=2)                                   # [c, N]
        best[c0:c0 + step] = thetas.gather(1, mse.argmin(dim=1, keepdim=True))[:, 0]
    return best


def _fused_mmse_available(z: Tensor) -> bool:
    """The C++ error kernel (snn_det/neurons/csrc/mmse.cpp) serves float32 samples on the
    CPU; ``SNN_DET_FUSED=0`` turns it off like the fused neuron steps."""
    from ..neurons import fused_available
    return fused_available() and z.device.type == 'cpu' and z.dtype == torch.float32 \
        and hasattr(torch.ops.snn_det, 'mmse_errors')


@torch.no_grad()
def choose_threshold(obs: ActivationObserver, method: str = 'mmse', T: int = 32,
                     channel_wise: bool = True, percentile: float = 99.99,
                     grid: int = 100, rounding: bool = True) -> Tensor:
    """Threshold of one site, shape ``(1, C, 1, 1)`` or ``(1, 1, 1, 1)``."""
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method '{method}'; choose from {THRESHOLD_METHODS}")
    if obs.samples is None:
        raise RuntimeError('the observer saw no activations: no calibration images reached it')
    if not bool((obs.max > 0).any()):
        raise ValueError('the site never activated on the calibration images (every input '
                         'current <= 0): its threshold would be 0; calibrate on other images')
    if method == 'max':
        theta = obs.max if channel_wise else obs.max.max().reshape(1)
    elif method == 'percentile':
        theta = _percentile(obs, percentile, channel_wise)
    else:
        theta = _mmse(obs, T, grid, channel_wise, rounding)
    theta = torch.nan_to_num(theta, nan=0.0)
    dead = (obs.max <= 0) | (theta <= 0) if channel_wise else None
    if channel_wise and bool(dead.any()):
        # a channel that never activated keeps the layer's threshold
        layer = choose_threshold(obs, method, T, False, percentile, grid, rounding)
        theta = torch.where(dead, layer.reshape(1), theta)
    theta = theta.clamp_min(1e-6)
    return theta.reshape(1, -1, 1, 1)
