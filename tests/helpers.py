"""Tiny backbones with non-trivial BN statistics for fast CPU tests."""
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
