"""Heaviside spike function with the rectangular surrogate gradient.

Seed 003 Eq. 20: dTheta(u)/du ~= h(u) = 1/alpha * 1[|u - theta| < alpha/2].
Here the argument is already ``u - theta``.
"""
import torch
from torch import Tensor


class RectangularSpike(torch.autograd.Function):
    """``Theta(x) = 1[x >= 0]`` forward, ``1/alpha * 1[|x| < alpha/2]`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        (x,) = ctx.saved_tensors
        h = (x.abs() < ctx.alpha / 2).to(grad.dtype) / ctx.alpha
        return grad * h, None


def spike(x: Tensor, alpha: float = None) -> Tensor:
    """Heaviside step; differentiable through the surrogate when ``alpha`` is set."""
    if alpha is None:
        return (x >= 0).to(x.dtype)
    return RectangularSpike.apply(x, alpha)
