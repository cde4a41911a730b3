"""Weight calibration, part of the Advanced Calibration Pipeline (seed 001 Eq. 23-24).

Cache, per calibration batch, the ANN target ``x`` of the site and the SNN's
time-averaged input ``s_bar`` of the convolution that feeds it, then minimise

    || x - ClipRound(W s_bar + b + r, v(0)) ||^2          (Eq. 21, 23)

over W with SGD (momentum, cosine decay) and the straight-through gradient of
the rounding (Eq. 24).  ``r`` is whatever else reaches the site's input current
and is held fixed: the shortcut of a residual block (the neuron after the add
is calibrated with the shortcut's contribution included).  The weights are only
kept if the full-batch loss went down.

The per-batch caches live in a :class:`~snn_det.runtime.cache.CalibrationCache`
(RAM up to its budget, files beyond) and are loaded when a batch is used.
"""
import math
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor

from ..neurons.quantizers import if_rate
from ..runtime.cache import CalibrationCache
from .collect import ann_site, snn_site
from .context import calibration_step
from .reduce import average_gradients_, sum_over_ranks
from ..runtime.spike_codes import store


def _loss(out: Tensor, target: Tensor) -> Tensor:
    """Squared error summed over channels, averaged over batch and space."""
    return (out - target).pow(2).sum(1).mean()


def calibrate_weights(graph, net, batches: List[Tensor], site: str, T: int, chunk_size=None,
                      acts=None, iters: int = 5000, lr: float = 1e-5, momentum: float = 0.9,
                      batch_size: int = 32, seed: int = 0, cache=None) -> dict:
    """Optimise the owner convolution's weights of ``site``; returns losses before/after."""
    info = graph.site(site)
    conv = net.conv(info.owner)
    neuron = net.neuron(site)
    post = info.post if info.post is not None else (lambda t: t)
    slope = neuron.negative_slope if neuron.signed else None   # ReLU limit: slope 0
    rounding = getattr(neuron, 'rounding', True)
    store_in = cache if cache is not None else CalibrationCache()
    with torch.no_grad():
        stored = []
        for x in batches:
            target = ann_site(graph, x, site, acts)['site_out']
            got = snn_site(net, x, site, T, chunk_size)
            s_in, z = got['conv_in'], got['site_in']
            rest = z - post(conv(s_in))
            stored.append(tuple(store(store_in, t) for t in (s_in, rest, target)))
            del got, s_in, z, rest, target
    theta, v0 = neuron.threshold, neuron.v0

    def load(i):
        return tuple(e.decode() for e in stored[i])

    def forward(w, s_in, rest):
        z = post(F.conv2d(s_in, w, conv.bias, conv.stride, conv.padding, conv.dilation,
                          conv.groups)) + rest
        return if_rate(z, T, theta, v0, slope, rounding)

    def full_loss(w):           # over the calibration images of every rank
        with torch.no_grad():
            tot, n = 0.0, 0
            for i in range(len(stored)):
                s, r, t = load(i)
                tot += float(_loss(forward(w, s, r), t)) * s.shape[0]
                n += s.shape[0]
            tot, n = sum_over_ranks(tot, n)
            return tot / n

    w0 = conv.weight.detach().clone()
    before = full_loss(w0)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(iters, 1))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(iters):
        i = int(torch.randint(len(stored), (1,), generator=gen))
        s_in, rest, target = load(i)
        if s_in.shape[0] > batch_size:
            idx = torch.randperm(s_in.shape[0], generator=gen)[:batch_size]
            s_in, rest, target = s_in[idx], rest[idx], target[idx]
        with torch.enable_grad():
            loss = _loss(forward(w, s_in, rest), target)
            opt.zero_grad()
            loss.backward()
        average_gradients_([w])           # the same step on every rank
        opt.step()
        sched.step()
    after = full_loss(w.detach())
    if math.isfinite(after) and after < before:
        with torch.no_grad():
            conv.weight.copy_(w.detach())
    else:
        after = before
    return dict(before=before, after=after)


@calibration_step('weights', order=30)
def weights_step(ctx) -> None:
    """ACP's weight calibration (seed 001 Eq. 23-24) at ``ctx.site``."""
    cfg = ctx.cfg
    calibrate_weights(ctx.graph, ctx.net, ctx.frontiers, ctx.site, ctx.T, ctx.chunk_size,
                      ctx.acts, cfg.weight_iters, cfg.weight_lr, cfg.weight_momentum,
                      cfg.weight_batch, cfg.seed, cache=ctx.cache)
