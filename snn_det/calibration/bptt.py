"""Fine calibration (FC) with BPTT, seed 003 Stage II (Eq. 19-21, Algorithm 1).

For one site at a time, cache the SNN's per-step input of the convolution
feeding it (``S^l = [s[1], ..., s[T]]``) and the target activation ``a_hat``
of the (QC-)ANN, then optimise that convolution's weights and the neuron's
initial potential through the neuron's T-step dynamics: spikes use the
rectangular surrogate gradient ``h(u) = 1/alpha 1[|u - theta| < alpha/2]``
(Eq. 20), the reset path carries ``1 - theta h(u)`` (Eq. 21) through autograd.
Loss: MSE for detection, KL for classification (Eq. 19; here between the
channel-softmax of target and rate at each position).  Adam, no weight decay,
early stopping with a patience; the best weights/potential are kept.  Seed 003
stops early "to alleviate overfitting": with ``fc_holdout`` > 0 that fraction of
each cached batch's images is never trained on and the stopping loss (and the
choice of the kept state) is theirs; with 0 it is the loss on all calibration
images, which only guards against divergence.
Memory is O(T x this layer), never the whole network's: the per-batch caches
live in a :class:`~snn_det.runtime.cache.CalibrationCache` (spike inputs
in bits, RAM up to its budget, files beyond) and one batch is loaded at a time.
"""

import torch
import torch.nn.functional as F

from ..runtime.cache import CalibrationCache
from .collect import ann_site, snn_site
from .context import calibration_step
from .reduce import average_gradients_, sum_over_ranks
from ..runtime.spike_codes import encode, store


def _loss(rate, target, kind: str):
    if kind == 'kl':
        return F.kl_div(F.log_softmax(rate, dim=1), F.log_softmax(target, dim=1),
                        log_target=True, reduction='batchmean')
    return F.mse_loss(rate, target)


class _CachedBatch:
    """One batch's ``(S, rest, target)`` in the cache, or the images ``lo:hi`` of it."""

    def __init__(self, entries, lo=0, hi=None):
        self.entries, self.lo, self.hi = entries, lo, hi

    @property
    def size(self) -> int:
        B = self.entries[2].shape[0]
        return (B if self.hi is None else self.hi) - self.lo

    def part(self, lo, hi) -> '_CachedBatch':
        return _CachedBatch(self.entries, self.lo + lo, self.lo + hi)

    def load(self):
        s_seq, rest, target = (e.decode() for e in self.entries)
        if self.lo == 0 and self.hi is None:
            return s_seq, rest, target
        sl = slice(self.lo, self.hi)        # dim 1 of s_seq and rest is the batch
        return s_seq[:, sl], rest[:, sl], target[sl]


def _split(cached: list, holdout: float):
    """(training, stopping) lists of cached batches: the last ``round(holdout * B)``
    images of each batch of B go to the stopping set (a batch keeps at least one
    training image); without a held-out image the stopping set is all of ``cached``."""
    if not holdout:
        return cached, cached
    train, held = [], []
    for batch in cached:
        B = batch.size
        k = min(int(round(holdout * B)), B - 1)
        if k <= 0:
            train.append(batch)
            continue
        n = B - k
        train.append(batch.part(0, n))
        held.append(batch.part(n, B))
    return train, (held or cached)


def calibrate_bptt(graph, net, batches, site: str, T: int, chunk_size=None, acts=None,
                   cfg=None, cache=None) -> dict:
    """Optimise W and v(0) of ``site`` with BPTT; returns losses before/after."""
    info = graph.site(site)
    conv = net.conv(info.owner)
    neuron = net.neuron(site)
    post = info.post if info.post is not None else (lambda t: t)
    iters, lr, patience = cfg.fc_iters, cfg.fc_lr, cfg.fc_patience
    alpha = cfg.fc_alpha * float(neuron.threshold.mean())
    cache = cache if cache is not None else CalibrationCache()
    cached = []
    with torch.no_grad():
        for x in batches:
            target = ann_site(graph, x, site, acts)['site_out']
            got = snn_site(net, x, site, T, chunk_size, keep_steps=True)
            z_seq = got['site_in_seq']                                   # [T, B, C, H, W]
            if 'conv_in_seq' in got:
                s_seq = got['conv_in_seq']
            else:     # analog stem input, the same at every step: [1, B, C, H, W]
                s_seq = got['conv_in'].unsqueeze(0)
            own = post(conv(s_seq.reshape(-1, *s_seq.shape[2:])))
            rest = z_seq - own.reshape(s_seq.shape[0], -1, *own.shape[1:])
            cached.append(_CachedBatch((encode(cache, s_seq, channel_dim=2),
                                        store(cache, rest), store(cache, target))))
            del got, z_seq, s_seq, own, rest, target

    v0_shape = neuron.v0.shape if neuron.v0.shape[-2:] != (1, 1) else (1, info.channels, 1, 1)
    w = conv.weight.detach().clone().requires_grad_(True)
    v0 = neuron.v0.detach().expand(v0_shape).clone().requires_grad_(True)

    def run(s_seq, rest, with_grad):
        with torch.set_grad_enabled(with_grad):
            z = post(F.conv2d(s_seq.reshape(-1, *s_seq.shape[2:]), w, conv.bias, conv.stride,
                              conv.padding, conv.dilation, conv.groups))
            z = z.reshape(s_seq.shape[0], -1, *z.shape[1:]) + rest    # broadcasts 1 -> T
            neuron.reset()
            neuron.v = v0.expand_as(z[0]) + torch.zeros_like(z[0])
            if neuron.signed:
                neuron.n = torch.zeros_like(z[0])
            neuron.surrogate_alpha = alpha if with_grad else None
            try:
                out = neuron(z)
            finally:
                neuron.surrogate_alpha = None
                neuron.reset()
            return out.mean(0)

    train, held = _split(cached, cfg.fc_holdout)

    def full_loss():            # over the (held-out) images of every rank
        with torch.no_grad():
            total = 0
            for b in held:
                s, r, t = b.load()
                total = total + float(_loss(run(s, r, False), t, cfg.fc_loss))
            total, n = sum_over_ranks(total, len(held))
            return total / n

    before = best = full_loss()
    best_state = (w.detach().clone(), v0.detach().clone())
    opt = torch.optim.Adam([w, v0], lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    bad = 0
    check_every = max(10, len(train))      # early-stopping check, in iterations
    for it in range(iters):
        s_seq, rest, target = train[int(torch.randint(len(train), (1,), generator=gen))].load()
        if cfg.fc_batch and target.shape[0] > cfg.fc_batch:    # a random mini-batch
            idx = torch.randperm(target.shape[0], generator=gen)[:cfg.fc_batch]
            s_seq, rest, target = s_seq[:, idx], rest[:, idx], target[idx]
        loss = _loss(run(s_seq, rest, True), target, cfg.fc_loss)
        opt.zero_grad()
        loss.backward()
        average_gradients_([w, v0])           # the same step on every rank
        opt.step()
        if (it + 1) % check_every == 0 or it + 1 == iters:
            cur = full_loss()
            if cur < best - 1e-12:
                best, bad = cur, 0
                best_state = (w.detach().clone(), v0.detach().clone())
            else:
                bad += 1
                if bad >= patience:
                    break
    with torch.no_grad():
        conv.weight.copy_(best_state[0])
        neuron.v0 = best_state[1].contiguous()
    return dict(before=before, after=best)


@calibration_step('fc', order=50)
def fine_step(ctx) -> None:
    """Fine calibration with BPTT (seed 003 Eq. 19-21) at ``ctx.site``."""
    calibrate_bptt(ctx.graph, ctx.net, ctx.frontiers, ctx.site, ctx.T, ctx.chunk_size,
                   ctx.acts, ctx.cfg, cache=ctx.cache)
