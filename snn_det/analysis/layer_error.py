"""Per-layer relative error of the SNN against the ANN (seed 001 Sec. 3.4, Fig. 2/5).

For every site, ``||x - s_bar||^2 / ||x||^2`` per channel, where ``x`` is the
ANN activation and ``s_bar`` the SNN's time-averaged output; shown as one box
per layer over channels (whiskers at the 5th / 95th percentile).
"""
from typing import Dict, List

import torch
from torch import Tensor

from ..conversion.ops import AnnOps, sum_over_time


@torch.no_grad()
def site_outputs_ann(graph, x: Tensor, acts=None) -> Dict[str, Tensor]:
    out = {}

    def rec(kind, name, t, steps):
        if kind in ('site_out', 'rois'):    # rois: a two-stage graph's proposals
            out[name] = t.detach()

    graph.forward(x, AnnOps(graph, acts, recorder=rec))
    return out


@torch.no_grad()
def site_outputs_snn(net, x: Tensor, T: int, chunk_size=None, rois=None) -> Dict[str, Tensor]:
    sums = {}

    def rec(kind, name, t, steps):
        if kind == 'site_out':
            s = sum_over_time(t, steps)
            sums[name] = sums[name] + s if name in sums else s

    net.simulate(x, T, chunk_size, recorder=rec, rois=rois)
    return {k: v / T for k, v in sums.items()}


@torch.no_grad()
def relative_errors(graph, net, batches: List[Tensor], T: int, acts=None,
                    chunk_size=None) -> Dict[str, Tensor]:
    """Per-channel relative error of every site, accumulated over the batches."""
    num, den = {}, {}
    for x in batches:
        a = site_outputs_ann(graph, x, acts)
        # a two-stage RoI head is compared on the same (the ANN's) proposals
        s = site_outputs_snn(net, x, T, chunk_size, a.pop('rois', None))
        for k in a:
            n = ((a[k] - s[k]) ** 2).sum(dim=(0, 2, 3))
            d = (a[k] ** 2).sum(dim=(0, 2, 3))
            num[k] = num.get(k, 0) + n
            den[k] = den.get(k, 0) + d
    return {k: (num[k] / den[k].clamp_min(1e-12)).cpu() for k in num}


def plot_relative_errors(errors: Dict[str, Dict[str, Tensor]], path: str, title: str = '') -> None:
    """One panel per method (one shared log-scale y axis), one box per layer (channels)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    methods = list(errors)
    names = list(next(iter(errors.values())).keys())
    fig, axes = plt.subplots(len(methods), 1, figsize=(max(6, 0.35 * len(names)), 2.6 * len(methods)),
                             sharex=True, sharey=True, squeeze=False)
    for ax, m in zip(axes[:, 0], methods):
        data = [errors[m][n].clamp_min(1e-6).numpy() for n in names]
        ax.boxplot(data, whis=(5, 95), showmeans=True, showfliers=False)
        ax.set_yscale('log')
        ax.set_ylabel('rel. error')
        ax.set_title(m, fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xticks(range(1, len(names) + 1))
    axes[-1, 0].set_xticklabels(names, rotation=90, fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
