"""Closed-form rate functions of IF neurons (what T steps of a neuron compute).

These are the analytic counterparts of :mod:`snn_det.neurons.if_neuron` and are
used to choose thresholds (seed 001 Algo. 1), to build the weight-calibration
objective (seed 001 Eq. 21/23) and the QC-ANN activations (seed 003 Eq. 12/22).
All functions broadcast ``threshold`` / ``v0`` against ``x``.
"""
import torch
from torch import Tensor


class _RoundSTE(torch.autograd.Function):
    """round / floor with the straight-through gradient of seed 001 Eq. 24."""

    @staticmethod
    def forward(ctx, x: Tensor, floor: bool) -> Tensor:  # noqa: D102
        return torch.floor(x) if floor else torch.floor(x + 0.5)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return grad, None


def round_ste(x: Tensor) -> Tensor:
    """floor(x + 1/2) in the forward pass, identity gradient (Eq. 24)."""
    return _RoundSTE.apply(x, False)


def floor_ste(x: Tensor) -> Tensor:
    """floor(x) in the forward pass, identity gradient (Eq. 24)."""
    return _RoundSTE.apply(x, True)


def clip_floor(x: Tensor, T: int, threshold: Tensor) -> Tensor:
    """ClipFloor of seed 001 Eq. 10: ``theta/T * clip(floor(T x / theta), 0, T)``."""
    return threshold / T * torch.clamp(floor_ste(x * T / threshold), 0, T)


def clip_round(x: Tensor, T: int, threshold: Tensor, v0: Tensor = None) -> Tensor:
    """ClipRound of seed 001 Eq. 17, with a non-zero initial potential Eq. 21.

    ``theta/T * clip(floor(T x / theta + v0 / theta + 1/2), 0, T)``; ``v0`` here
    is the potential *added* to the theta/2 shift (``None`` means 0).
    """
    z = x * T / threshold + 0.5
    if v0 is not None:
        z = z + v0 / threshold
    return threshold / T * torch.clamp(floor_ste(z), 0, T)


def signed_clip_round(x: Tensor, T: int, threshold: Tensor, negative_slope: float,
                      rounding: bool = True) -> Tensor:
    """Rate of a signed neuron for Leaky-ReLU (seed 003 Eq. 22), in value units.

    ``theta * clip(1/theta [LeakyReLU(x)]_{theta/T}, -1, 1)`` where
    ``[y]_d = d * round(y / d)`` (``floor`` towards zero without rounding).
    """
    y = torch.where(x >= 0, x, x * negative_slope)
    q = y * T / threshold
    if rounding:
        q = torch.sign(q) * floor_ste(q.abs() + 0.5)
    else:
        q = torch.sign(q) * floor_ste(q.abs())
    return threshold / T * torch.clamp(q, -T, T)


def rate_function(x: Tensor, T: int, threshold: Tensor, rounding: bool = True,
                  negative_slope: float = None) -> Tensor:
    """Expected time-averaged output of a neuron with constant input current x.

    ReLU sites use ClipRound (Eq. 17) or ClipFloor (Eq. 10); Leaky-ReLU sites
    the signed QC function (seed 003 Eq. 22).
    """
    if negative_slope is not None:
        return signed_clip_round(x, T, threshold, negative_slope, rounding)
    return clip_round(x, T, threshold) if rounding else clip_floor(x, T, threshold)


def if_rate(z: Tensor, T: int, threshold: Tensor, v0=0.0, negative_slope: float = None,
            rounding: bool = True) -> Tensor:
    """Closed-form time-averaged output of an IF neuron with constant input ``z``.

    Unsigned (seed 001 Eq. 21 with the shift inside ``v0``)::

        theta/T * clip(floor((T z + v0) / theta), 0, T)

    so ``v0 = theta/2`` gives ClipRound (Eq. 17) and ``v0 = 0`` ClipFloor (Eq. 10).
    Signed (Leaky-ReLU, :class:`SignedIFNeuron`): the integrated current
    ``u = T z + v0`` is counted in steps of ``theta`` above zero and of
    ``theta / slope`` below, rounded when ``rounding`` (half thresholds).
    Gradients pass straight through the floor (Eq. 24).
    """
    u = z * T + v0
    if negative_slope is None:
        return threshold / T * torch.clamp(floor_ste(u / threshold), 0, T)
    q = torch.where(u >= 0, u, u * negative_slope) / threshold
    h = 0.5 if rounding else 0.0
    q = torch.sign(q) * floor_ste(q.abs() + h)
    return threshold / T * torch.clamp(q, -T, T)
