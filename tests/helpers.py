"""Tiny backbones with non-trivial BN statistics for fast CPU tests, and the tools as
modules."""
import importlib.util
import os.path as osp

import torch
from torch.nn.modules.batchnorm import _BatchNorm

import snn_det  # noqa: F401  (registers modules)
from mmdet.registry import MODELS


def randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
    return model


TINY = {
    'resnet18': dict(type='ResNet', depth=18, base_channels=8, out_indices=(0, 1, 2, 3),
                     norm_eval=True, frozen_stages=-1),
    'resnet50': dict(type='ResNet', depth=50, base_channels=4, out_indices=(1, 2, 3),
                     norm_eval=True, frozen_stages=-1),
    'darknet': dict(type='ScaledDarknet', widen_factor=0.125, stage_blocks=(1, 1, 2, 2, 1),
                    out_indices=(3, 4, 5)),
}


def tiny_backbone(name, **kw):
    cfg = dict(TINY[name])
    cfg.update(kw)
    m = MODELS.build(cfg)   # PyTorch's default init; BN statistics randomised below
    randomize_bn(m)
    return m.eval()


def tiny_spiking(name, T=32, conversion=None, **kw):
    cfg = dict(type='SpikingBackbone', backbone=dict(TINY[name]), T=T,
               conversion=conversion or {}, **kw)
    m = MODELS.build(cfg)   # PyTorch's default init; BN statistics randomised below
    randomize_bn(m)
    return m.eval()


def rel_error(a, b):
    return float(((a - b) ** 2).sum() / (a ** 2).sum().clamp_min(1e-12))


# -- independent measurements (forward hooks; no snn_det calibration helper) -------------


def ann_site_outputs(bb, x):
    """Every ReLU site's output of a tiny ResNet's *plain* ANN, from forward hooks on
    mmdet's own modules, so independent of snn_det's call graph: the stem's max-pool
    (``relu``), then each block's shared ReLU, called once per site of the block in order
    (``act1`` [, ``act2``], ``act_out``)."""
    from mmdet.models.backbones.resnet import BasicBlock
    ann, outs, hooks = bb.ann, {}, []
    hooks.append(ann.maxpool.register_forward_hook(
        lambda m, i, o: outs.__setitem__('relu', o.detach().clone())))
    for layer_name in ann.res_layers:
        for j, block in enumerate(getattr(ann, layer_name)):
            n = 2 if isinstance(block, BasicBlock) else 3
            names = [f'{layer_name}.{j}.act{k}' for k in range(1, n)] + \
                [f'{layer_name}.{j}.act_out']
            calls = []

            def hook(m, i, o, names=names, calls=calls):
                outs[names[len(calls) % len(names)]] = o.detach().clone()
                calls.append(1)
            hooks.append(block.relu.register_forward_hook(hook))
    try:
        with torch.no_grad():
            ann(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


def module_outputs(run, modules: dict, time_average: int = 0):
    """Outputs of ``modules`` ({name: module}) while ``run()`` executes, from forward
    hooks; with ``time_average=T`` the outputs (``[K, B, ...]`` chunks of time steps) are
    summed over time and divided by T, i.e. a spiking neuron's rate x threshold."""
    outs, hooks = {}, []
    for name, mod in modules.items():
        def hook(m, i, o, name=name):
            o = o.detach()
            if time_average:
                o = o.sum(0) / time_average
                outs[name] = outs[name] + o if name in outs else o
            else:
                outs[name] = o.clone()
        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return outs


def snn_site_rates(net, x, T, sites):
    """Each site's time-averaged SNN output (rate x threshold) on ``x``, from hooks on
    the site's neuron during a full simulation."""
    return module_outputs(lambda: net.simulate(x, T),
                          {s: net.neuron(s) for s in sites}, time_average=T)


ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def load_tool(name: str):
    """``tools/<name>.py`` as a module (named ``snn_det_tools_<name>``, not ``<name>``:
    ``test`` would shadow the standard library's package)."""
    spec = importlib.util.spec_from_file_location(f'snn_det_tools_{name}',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
