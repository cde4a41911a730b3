"""The ANN's energy beside the SNN's (snn_det/analysis/energy.py, seed 003 Sec. VI-E)."""
import pytest
import torch
from torch import nn

from helpers import tiny_spiking
from snn_det.analysis.energy import ann_macs, compare, compare_all, count_macs, energy_report
from snn_det.analysis.firing import measure_firing
from snn_det.pipeline import convert_backbone


class _Parts(nn.Module):
    """backbone -> neck -> head, each a few layers, shapes known by hand."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False))
        self.neck = nn.Conv2d(8, 6, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))


def test_mac_count_of_a_tiny_net_is_the_hand_computation():
    model = _Parts()
    x = torch.rand(2, 3, 16, 16)
    got = count_macs(model, lambda: model(x), images=2)
    # conv1: 4 x 8 x 8 outputs x 3 inputs x 3 x 3; conv2 (2 groups): 8 x 8 x 8 x 2 x 3 x 3
    backbone = 4 * 8 * 8 * 3 * 9 + 8 * 8 * 8 * (4 // 2) * 9
    neck = 6 * 8 * 8 * 8          # 1x1: 6 x 8 x 8 outputs x 8 inputs
    head = 5 * 6                  # Linear 6 -> 5
    assert got == dict(backbone=backbone, neck=neck, head=head, full=backbone + neck + head)
    # and not a function of the batch: per image
    assert count_macs(model, lambda: model(x[:1]), images=1) == got


def test_ann_energy_and_ratio_use_the_snn_s_images():
    """The ANN's MACs are counted on the very batches the SNN's figure comes from (two
    input sizes here); with T=1 every folded convolution of the SNN runs once per image,
    so the SNN's dense operations (hooks on its own convolutions) equal the ANN's MACs
    (hooks on the ANN's modules); the ratio is the SNN's energy over 4.6 pJ x those."""
    T = 4
    bb = tiny_spiking('resnet18', conversion=dict(threshold='max', shift='bias'))
    batches = [torch.rand(2, 3, 48, 48), torch.rand(1, 3, 64, 40)]
    convert_backbone(bb, batches, [T, 1], progress=False)
    bb.set_mode('snn')
    ann = ann_macs(bb, batches)
    per_size = [ann_macs(bb, [b])['full'] for b in batches]
    assert per_size[0] != per_size[1]
    assert ann['full'] == pytest.approx((2 * per_size[0] + per_size[1]) / 3, rel=1e-12)
    assert ann['backbone'] == ann['full'] and ann['neck'] == ann['head'] == 0
    assert bb.mode == 'snn'                       # switched back after counting
    dense, images = 0, 0

    def hook(m, i, o):
        nonlocal dense
        dense += o.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    net1 = bb.snn['T1']
    hooks = [c.register_forward_hook(hook) for c in net1.convs.values()]
    with torch.no_grad():
        for x in batches:
            net1.simulate(x, 1)
            images += x.shape[0]
    for h in hooks:
        h.remove()
    assert ann['full'] == pytest.approx(dense / images, rel=1e-12)

    firing = {T: measure_firing(bb.snn[f'T{T}'], batches, T)}
    c = compare_all(bb, batches, firing, 'backbone')[T]
    e_ann = 4.6e-9 * ann['full']
    assert c['ann_energy_mJ_per_image']['full'] == pytest.approx(e_ann, rel=1e-12)
    assert c['snn_energy_mJ_per_image'] == firing[T]['energy_mJ_per_image']
    assert c['snn_over_ann'] == pytest.approx(firing[T]['energy_mJ_per_image'] / e_ann)
    assert c['model_over_ann'] == pytest.approx(c['snn_over_ann'])    # nothing after it
    text = energy_report(firing, {T: c}, (48, 48))
    assert 'SNN/ANN' in text and 'memory traffic not counted' in text


def test_scope_compares_the_same_parts_and_adds_the_analog_rest():
    ann = dict(backbone=100e6, neck=50e6, head=250e6, full=400e6)
    snn = dict(macs_per_image=10e6, sops_per_image=500e6,
               energy_mJ_per_image=(4.6 * 10e6 + 0.9 * 500e6) * 1e-9)
    c = compare(ann, snn, 'backbone')
    assert c['ann_scope_energy_mJ'] == pytest.approx(4.6e-9 * 100e6)
    assert c['snn_over_ann'] == pytest.approx(snn['energy_mJ_per_image'] / (4.6e-9 * 100e6))
    # the whole model: the SNN backbone plus the ANN neck and head, against the whole ANN
    assert c['model_energy_mJ'] == pytest.approx(snn['energy_mJ_per_image'] + 4.6e-9 * 300e6)
    assert c['model_over_ann'] == pytest.approx(c['model_energy_mJ'] / (4.6e-9 * 400e6))
    full = compare(ann, snn, 'full')
    assert full['ann_scope_energy_mJ'] == pytest.approx(4.6e-9 * 400e6)
    assert full['model_energy_mJ'] == pytest.approx(snn['energy_mJ_per_image'])


def test_a_spiking_scope_counts_the_plain_ann_once():
    """A detector whose neck and head belong to the spiking scope (--scope full) is
    counted as the plain ANN detector: each part once, the same MACs as with the
    backbone scope; its spiking classes and scope are back afterwards."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from helpers import ROOT
    from mmdet.registry import MODELS
    from snn_det.apis import wrap_backbone_cfg
    init_default_scope('mmdet')
    x = [torch.rand(1, 3, 64, 96)]
    counts, models = {}, {}
    for scope in ('backbone', 'full'):
        cfg = Config.fromfile(f'{ROOT}/configs/synth/retinanet_r18n_fpn_12e_synth.py')
        wrap_backbone_cfg(cfg, 4, {}, None, scope)
        models[scope] = m = MODELS.build(cfg.model).eval()
        before = (type(m), type(m.bbox_head), m.backbone.scope, m.backbone.graph)
        counts[scope] = ann_macs(m, x)
        assert (type(m), type(m.bbox_head), m.backbone.scope, m.backbone.graph) == before
    assert type(models['full']).__name__.startswith('Spiking')
    assert counts['full'] == counts['backbone']
    assert min(counts['full'][p] for p in ('backbone', 'neck', 'head')) > 0
