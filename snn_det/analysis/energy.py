"""Energy of the ANN beside its SNN, by the same operation counts (seed 003 Sec. VI-E).

The ANN costs one multiply-accumulate (MAC) per dense operation of each convolution
and fully connected layer, ``E_ANN = 4.6 pJ x MACs`` (45 nm, 32-bit float, Horowitz
2014); the SNN costs ``E_SNN = 4.6 pJ x MACs + 0.9 pJ x SOPs`` (its layers with analog
input count as MACs, those fed by spikes as synaptic operations;
:func:`~snn_det.analysis.firing.measure_firing`).  Both count operations only: memory
traffic (weights, membranes, spikes) is not counted.

The ANN's MACs are counted here by forward hooks on every ``nn.Conv2d`` / ``nn.Linear``
of the model on the very input the SNN's figure was measured on, not through snn-det's
call graph: ``MACs = output elements x in_channels / groups x kernel area`` (Conv2d) or
``output elements x in_features`` (Linear), per image.  Batch norm, activations,
pooling and additions are not counted (BN is folded into the convolutions of the SNN).
"""
import types
from contextlib import contextmanager
from typing import Callable, Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from .firing import E_AC_PJ, E_MAC_PJ
from .metrics import save_metric_plot

#: the parts a detector / classifier is made of, in the order the scopes cover them
PARTS = {'backbone': ('backbone',), 'neck': ('neck',),
         'head': ('rpn_head', 'roi_head', 'bbox_head', 'head')}
#: which ANN parts a spiking scope replaces
SCOPE_PARTS = {'backbone': ('backbone',), 'neck': ('backbone', 'neck'),
               'full': ('backbone', 'neck', 'head')}


def layer_macs(module: nn.Module, out: Tensor) -> int:
    """Dense multiply-accumulates of one call of a Conv2d / Linear with output ``out``."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    raise TypeError(f'no MAC count for {type(module).__name__}')


def _part_of(model: nn.Module) -> Dict[int, str]:
    """``id(module) -> part`` for every Conv2d / Linear; a module reachable from several
    parts (a neck attached to a spiking backbone) belongs to the most specific one."""
    from ..conversion.spiking_net import SpikingNet
    spiking = {id(m) for net in model.modules() if isinstance(net, SpikingNet)
               for m in net.modules()}       # the converted nets' folded convolutions
    owner = {}
    for part in ('head', 'neck', 'backbone'):
        for attr in PARTS[part]:
            sub = getattr(model, attr, None)
            if not isinstance(sub, nn.Module):
                continue
            for m in sub.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in spiking:
                    owner.setdefault(id(m), part)
    if not owner:       # a bare network (e.g. a backbone alone)
        owner = {id(m): 'backbone' for m in model.modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in spiking}
    return owner


@torch.no_grad()
def count_macs(model: nn.Module, run: Callable[[], object], images: int) -> Dict[str, float]:
    """MACs per image of each part (``backbone``, ``neck``, ``head``) and ``full`` while
    ``run()`` executes ``model`` on ``images`` images, from forward hooks."""
    owner = _part_of(model)
    totals = dict(backbone=0, neck=0, head=0)
    hooks = []

    def hook(m, inputs, out):
        if isinstance(out, Tensor):
            totals[owner[id(m)]] += layer_macs(m, out)

    for m in model.modules():
        if id(m) in owner:
            hooks.append(m.register_forward_hook(hook))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    out = {k: v / images for k, v in totals.items()}
    out['full'] = sum(out.values())
    return out


@contextmanager
def _ann_mode(model: nn.Module):
    """The model runs as the plain ANN meanwhile: its spiking backbone (if any) as its ANN
    backbone, and a spiking neck / head scope undone (the methods a ``SpikingDetector``
    binds on the instances are set aside, and the backbone reads out its own outputs), so
    every part runs once, as mmdet's detector runs it."""
    bb = model if hasattr(model, 'set_mode') else getattr(model, 'backbone', None)
    mode, scope = getattr(bb, 'mode', None), getattr(bb, 'scope', None)
    patched, classes = [], []
    if scope not in (None, 'backbone') and bb is not model:
        from ..models import spiking_detector
        plain = {cls: base for (_, base), cls in
                 getattr(spiking_detector, '_SUBCLASSES', {}).items()}
        roi = getattr(model, 'roi_head', None)
        for obj in (model, *(getattr(model, n, None) for n in PARTS['head']),
                    getattr(roi, 'bbox_head', None)):
            if obj is None:
                continue
            if type(obj) in plain:          # a Spiking<Class> of attach_scope: its class
                classes.append((obj, type(obj)))
                obj.__class__ = plain[type(obj)]
            for name, v in list(vars(obj).items()):
                if isinstance(v, types.MethodType):     # a method bound on the instance
                    patched.append((obj, name, vars(obj).pop(name)))
        graph = bb.graph
        bb.scope, bb.graph = 'backbone', getattr(bb, 'backbone_graph', graph)
    if mode is not None:
        bb.set_mode('ann')
    try:
        yield
    finally:
        if mode is not None:
            bb.set_mode(mode)
        if scope not in (None, 'backbone') and bb is not model:
            bb.scope, bb.graph = scope, graph
        for obj, name, v in patched:
            setattr(obj, name, v)
        for obj, cls in classes:
            obj.__class__ = cls


def _data_samples(model: nn.Module, x: Tensor):
    """Image metas a detector's tensor forward needs (the batch is the preprocessed,
    padded input: image shape = pad shape = its H x W, no rescaling)."""
    if not hasattr(model, 'rpn_head') and not hasattr(model, 'bbox_head'):
        return None
    from mmdet.structures import DetDataSample
    h, w = x.shape[-2:]
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                batch_input_shape=(h, w), scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta) for _ in range(x.shape[0])]


@torch.no_grad()
def ann_macs(model: nn.Module, batches: Sequence[Tensor]) -> Dict[str, float]:
    """MACs per image of the ANN ``model`` (detector or classifier, its spiking backbone
    switched to the ANN) on preprocessed batches (those the SNN was measured on), per
    part and ``full``."""
    batches = [batches] if isinstance(batches, Tensor) else list(batches)

    def run():
        for x in batches:
            if hasattr(model, 'data_preprocessor'):
                model(x, _data_samples(model, x), mode='tensor')
            else:
                model(x)
    was_training = model.training
    model.eval()
    try:
        with _ann_mode(model):
            return count_macs(model, run, sum(x.shape[0] for x in batches))
    finally:
        model.train(was_training)


def mac_energy_mJ(macs: float) -> float:
    """``4.6 pJ x MACs`` in mJ."""
    return E_MAC_PJ * macs * 1e-9


def compare(ann: Dict[str, float], snn: dict, scope: str = 'backbone') -> dict:
    """The SNN's figure (``measure_firing``'s, for the spiking ``scope``) beside the ANN's
    for the same parts, and the whole model's: spiking scope + the ANN parts after it
    (which stay analog) against the whole ANN.  Energies in mJ per image."""
    parts = SCOPE_PARTS[scope]
    ann_scope = sum(ann[p] for p in parts)
    rest = ann['full'] - ann_scope
    snn_mj = snn['energy_mJ_per_image']
    return dict(
        scope=scope,
        ann_macs_per_image={k: float(v) for k, v in ann.items()},
        ann_energy_mJ_per_image={k: mac_energy_mJ(v) for k, v in ann.items()},
        snn_macs_per_image=float(snn['macs_per_image']),
        snn_sops_per_image=float(snn['sops_per_image']),
        snn_energy_mJ_per_image=float(snn_mj),
        ann_scope_energy_mJ=mac_energy_mJ(ann_scope),
        snn_over_ann=snn_mj / max(mac_energy_mJ(ann_scope), 1e-30),
        model_energy_mJ=snn_mj + mac_energy_mJ(rest),
        model_over_ann=(snn_mj + mac_energy_mJ(rest)) / max(mac_energy_mJ(ann['full']), 1e-30),
        formula=f'{E_MAC_PJ} pJ/MAC, {E_AC_PJ} pJ/SOP (45 nm); memory traffic not counted')


def format_comparison(T: int, c: dict, size: Optional[tuple] = None) -> str:
    """Two lines for a report: the SNN scope against the same ANN parts, then the model."""
    ann_mj = c['ann_energy_mJ_per_image']
    at = f' at {size[0]}x{size[1]}' if size else ''
    parts = '+'.join(SCOPE_PARTS[c['scope']])
    return (f'T={T}: energy per image{at}, scope={c["scope"]} ({parts}): SNN '
            f'{c["snn_macs_per_image"] / 1e6:.1f} M MACs + {c["snn_sops_per_image"] / 1e6:.1f} M '
            f'SOPs = {c["snn_energy_mJ_per_image"]:.3f} mJ vs ANN '
            f'{sum(c["ann_macs_per_image"][p] for p in SCOPE_PARTS[c["scope"]]) / 1e6:.1f} M MACs '
            f'= {c["ann_scope_energy_mJ"]:.3f} mJ (SNN/ANN {c["snn_over_ann"]:.2f}x)\n'
            f'       whole model (analog parts after the scope as ANN): '
            f'{c["model_energy_mJ"]:.3f} mJ vs ANN {ann_mj["full"]:.3f} mJ '
            f'(backbone {ann_mj["backbone"]:.3f} / neck {ann_mj["neck"]:.3f} / head '
            f'{ann_mj["head"]:.3f}) = {c["model_over_ann"]:.2f}x; {c["formula"]}')


def compare_all(model: nn.Module, batches: Sequence[Tensor], firing: Dict[int, dict],
                scope: str) -> Dict[int, dict]:
    """:func:`compare` for each T of ``firing`` (``{T: measure_firing(...)}`` on
    ``batches``), the ANN's MACs counted once on the same batches."""
    ann = ann_macs(model, batches)
    return {T: compare(ann, f, scope) for T, f in firing.items()}


def energy_report(firing: Dict[int, dict], energy: Dict[int, dict],
                  size: Optional[tuple] = None) -> str:
    """The report's lines per T: mean firing rate, SNN against ANN energy."""
    lines = []
    for T, f in firing.items():
        rate = sum(f['rates'].values()) / max(len(f['rates']), 1)
        lines.append(f'T={T}: mean firing rate {rate:.3f} spikes/neuron/step')
        lines.append(format_comparison(T, energy[T], size))
    return '\n'.join(lines)


def energy_row(c: dict) -> dict:
    """What a benchmark row keeps of :func:`compare`: the whole model's energy per image
    (spiking scope + the ANN parts after it) beside the whole ANN's, their ratio, and the
    SNN scope's MACs (analog input) and SOPs (spikes)."""
    return dict(snn_mJ=round(c['model_energy_mJ'], 4),
                ann_mJ=round(c['ann_energy_mJ_per_image']['full'], 4),
                ratio=round(c['model_over_ann'], 4),
                snn_macs_M=round(c['snn_macs_per_image'] / 1e6, 2),
                snn_sops_M=round(c['snn_sops_per_image'] / 1e6, 2))


def plot_metric_vs_energy(points: Dict[str, list], ann: tuple, path: str, ylabel: str = 'AP',
                          title: str = '') -> None:
    """A metric against energy per image: one line per method through its T (``points``:
    ``{method: [(mJ, metric, T), ...]}``), the ANN (``(mJ, metric)``) as a reference."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in points.items():
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker='o', label=name)
        for e, v, T in pts:
            ax.annotate(f'T={T}', (e, 100 * v), fontsize=7, xytext=(3, -8),
                        textcoords='offset points')
    ax.plot([ann[0]], [100 * ann[1]], marker='*', color='k', markersize=12, linestyle='',
            label='ANN')
    ax.axvline(ann[0], color='k', linestyle=':', linewidth=0.8)
    ax.set_xscale('log')
    ax.set_xlabel('energy per image (mJ; 4.6 pJ/MAC, 0.9 pJ/SOP)')
    save_metric_plot(fig, ax, path, ylabel, title)
