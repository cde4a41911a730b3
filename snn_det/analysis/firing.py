"""Firing rates per site and energy by synaptic operations (seed 003 Sec. VI-E).

``SOP(l) = firing rate of l's input x T x dense ops of l``; the first layer,
fed analog pixels, counts as MACs (once: its input is the same at every step).  ``E = 4.6 pJ x MACs + 0.9 pJ x SOPs``
(45 nm, 32-bit float, Horowitz 2014).  Counting operations ignores memory
traffic.  A spike here carries its threshold (a per-channel scale when
thresholds are channel-wise), counted as one event.
"""
from typing import Dict, List

import torch
from torch import Tensor

E_MAC_PJ, E_AC_PJ = 4.6, 0.9


#: unit paths of the parts after the backbone (neck / head graphs)
PART_PREFIXES = ('neck', 'bbox_head', 'rpn_head', 'roi_head')


def is_spike_train(t: Tensor, channel_dim: int = 1) -> bool:
    """Every element is 0 or +-theta_c of its channel (one IF / signed spike train)."""
    a = t.abs()
    dims = [d for d in range(t.dim()) if d != channel_dim]
    theta = a.amax(dim=dims, keepdim=True)
    return bool(((a == 0) | (a == theta)).all())


@torch.no_grad()
def measure_firing(net, batches: List[Tensor], T: int, chunk_size=None) -> dict:
    """Firing rate of every site, and MACs / SOPs / energy of the spiking scope per image.

    A convolution whose input is a spike train costs synaptic operations (its dense
    operations x the share of inputs that spike); one whose input is analog costs
    MACs: the first layer once (direct encoding), and in a neck / head every layer fed
    by linear layers (e.g. RetinaHead's first convolution on FPN's currents) at every step.
    """
    graph = net.graph
    for n in net.neurons.values():
        n.record = True
        n.reset_stats()
    sops, analog, dense = {}, {}, {}

    def rec(kind, name, t, steps):
        if kind == 'conv_in':
            conv = net.conv(name)
            b = t.shape[0] // (steps or 1)
            h, w = t.shape[-2:]
            oh = (h + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) \
                // conv.stride[0] + 1
            ow = (w + 2 * conv.padding[1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) \
                // conv.stride[1] + 1
            ops = b * oh * ow * conv.out_channels * conv.in_channels // conv.groups \
                * conv.kernel_size[0] * conv.kernel_size[1]
            if steps is None:      # analog input, computed once per simulation
                analog[name] = ops
                return
            if '.' in name and name.split('.')[0] in PART_PREFIXES and \
                    not is_spike_train(t):   # analog currents at every step: MACs
                dense[name] = dense.get(name, 0) + ops * steps
                return
            # this call's dense operations over its steps x the share of inputs that spike
            sops[name] = sops.get(name, 0.0) + ops * steps * float((t != 0).float().mean())

    images, macs = 0, 0
    for x in batches:
        analog.clear()
        net.simulate(x, T, chunk_size, recorder=rec)
        macs += sum(analog.values())
        images += x.shape[0]
    rates = {s.name: net.neuron(s.name).spike_count / max(net.neuron(s.name).neuron_steps, 1)
             for s in graph.sites}
    for n in net.neurons.values():
        n.record = False
    macs, sops = (macs + sum(dense.values())) / images, sum(sops.values()) / images
    return dict(rates=rates, macs_per_image=macs, sops_per_image=sops,
                energy_mJ_per_image=(E_MAC_PJ * macs + E_AC_PJ * sops) * 1e-9)


def plot_firing_rates(rates_by_T: Dict[int, Dict[str, float]], path: str, title: str = '') -> None:
    """Bar chart of the firing rate (spikes per neuron per step) of every site."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(next(iter(rates_by_T.values())).keys())
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(names)), 3.5))
    width = 0.8 / len(rates_by_T)
    for i, (T, rates) in enumerate(sorted(rates_by_T.items())):
        ax.bar([j + i * width for j in range(len(names))], [rates[n] for n in names], width,
               label=f'T={T}')
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel('firing rate (spikes / neuron / step)')
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis='y')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
