"""Initial-potential calibration.

* Seed 001 (ACP, Eq. 21-22): ``v(0) := v(0) + T * e`` with ``e = x - s_bar``.
* Seed 003 coarse calibration (CC, Eq. 17-18): ``u[0] = T theta / N * sum(a_hat - r)``
  -- the same correction with the QC-ANN's activation ``a_hat`` as the target
  (``acts`` = the backbone's QC site activations).

The paper's v(0) is element-wise (averaged over the batch only) and so tied to
one input size.  Detection images vary in size, so the default here is the
per-channel mean over batch and space, shape ``(1, C, 1, 1)``, which
broadcasts to any H x W; ``'element'`` remains for fixed-size inputs.
"""
import torch

from .bias import site_error
from .context import calibration_step


@torch.no_grad()
def calibrate_potential(graph, net, batches, site: str, T: int, chunk_size=None, acts=None,
                        granularity: str = 'channel') -> float:
    """v(0) += T * e at ``site``; returns mean |T e|."""
    e = site_error(graph, net, batches, site, T, chunk_size, acts, granularity)
    neuron = net.neuron(site)
    delta = (T * e).to(neuron.v0)
    neuron.v0 = (neuron.v0 + delta).contiguous()   # broadcasts (1,1,1,1) -> delta's shape
    return float(delta.abs().mean())


@calibration_step('potential', order=20, observed_first=True)
def potential_step(ctx) -> None:
    """ACP's initial-potential calibration (seed 001 Eq. 21-22) at ``ctx.site``."""
    calibrate_potential(ctx.graph, ctx.net, ctx.frontiers, ctx.site, ctx.T, ctx.chunk_size,
                        ctx.acts, ctx.cfg.potential_granularity)


@calibration_step('cc', order=40, observed_first=True)
def coarse_step(ctx) -> None:
    """Coarse calibration (seed 003 Eq. 17-18) at ``ctx.site``: the same correction of
    the initial potential, towards the QC-ANN's activation when there is one."""
    calibrate_potential(ctx.graph, ctx.net, ctx.frontiers, ctx.site, ctx.T, ctx.chunk_size,
                        ctx.acts, ctx.cfg.potential_granularity)
