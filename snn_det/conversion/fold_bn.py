"""Fold batch normalization into the preceding convolution (seed 001 Eq. 25).

    W := W * gamma / sigma,    b := beta + (b - mu) * gamma / sigma,
    sigma = sqrt(running_var + eps)
"""
from typing import Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: Optional[_BatchNorm]) -> nn.Conv2d:
    """Return a new ``nn.Conv2d`` (with bias) equal to ``bn(conv(x))`` in eval mode."""
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                       stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                       groups=conv.groups, bias=True, padding_mode=conv.padding_mode)
    folded = folded.to(device=conv.weight.device, dtype=conv.weight.dtype)
    w = conv.weight.detach().clone()
    b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros_like(w[:, 0, 0, 0])
    if bn is not None:
        sigma = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.affine else torch.ones_like(sigma)
        beta = bn.bias if bn.affine else torch.zeros_like(sigma)
        scale = gamma / sigma
        w = w * scale.reshape(-1, 1, 1, 1)
        b = beta + (b - bn.running_mean) * scale
    folded.weight.copy_(w)
    folded.bias.copy_(b)
    return folded
