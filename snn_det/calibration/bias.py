"""Bias calibration, the Light Calibration Pipeline (seed 001 Sec. 4.4, Eq. 19-20).

For the site's error ``e = x - s_bar`` (ANN output minus the SNN's time-averaged
output), add the per-channel spatial mean ``mu_c(e)`` to the bias of the
convolution feeding the site, so the SNN's per-channel mean output matches the
ANN's on the calibration images.
"""
from typing import List

import torch
from torch import Tensor

from .collect import ann_site, snn_site
from .context import calibration_step
from .frontier import Frontier
from .reduce import reduce_mean


def channel_mean(e: Tensor) -> Tensor:
    """mu_c of Eq. 19 over batch and space: ``[B, C, H, W] -> [C]`` (sum and count)."""
    return e.sum(dim=(0, 2, 3)), e.numel() // e.shape[1]


@torch.no_grad()
def site_error(graph, net, batches: List[Tensor], site: str, T: int, chunk_size=None,
               acts=None, granularity: str = 'channel') -> Tensor:
    """Mean of ``x - s_bar`` at a site, per channel ``(1, C, 1, 1)``, per layer or per element."""
    total, count = None, 0
    for x in batches:
        # a frontier that observed the site while it moved there (Frontier.advance) has
        # e already; else one pass each
        e = x.take_observed(site) if isinstance(x, Frontier) else None
        if e is None:
            target = ann_site(graph, x, site, acts)['site_out']
            s_bar = snn_site(net, x, site, T, chunk_size, keys=('site_out',))['site_out']
            e = target - s_bar
            del target, s_bar
        if granularity == 'element':
            part, n = e.sum(0, keepdim=True), e.shape[0]
            if total is not None and part.shape != total.shape:
                raise ValueError(
                    f'element-wise potentials need calibration images of one size; got '
                    f'{tuple(total.shape[-2:])} and {tuple(part.shape[-2:])} at {site}')
        elif granularity == 'layer':
            part, n = e.sum().reshape(1, 1, 1, 1), e.numel()
        else:
            s, n = channel_mean(e)
            part = s.reshape(1, -1, 1, 1)
        total = part if total is None else total + part
        count += n
    return reduce_mean(total, count)


@torch.no_grad()
def calibrate_bias(graph, net, batches, site: str, T: int, chunk_size=None, acts=None) -> float:
    """b := b + mu_c(e) for the convolution owning ``site``; returns mean |mu_c(e)|."""
    e = site_error(graph, net, batches, site, T, chunk_size, acts, 'channel').reshape(-1)
    conv = net.conv(graph.site(site).owner)
    conv.bias.add_(e.to(conv.bias))
    return float(e.abs().mean())


@calibration_step('bias', order=10, observed_first=True)
def bias_step(ctx) -> None:
    """LCP (seed 001 Eq. 19-20) at ``ctx.site``."""
    calibrate_bias(ctx.graph, ctx.net, ctx.frontiers, ctx.site, ctx.T, ctx.chunk_size, ctx.acts)
