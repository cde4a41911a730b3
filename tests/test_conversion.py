"""BN folding, call-site neurons, thresholds and the registered wrapper."""
import pytest
import torch
from torch import nn

from helpers import rel_error, tiny_spiking
from snn_det.conversion import (ActivationObserver, ConversionConfig, ConversionStateError,
                                UnsupportedModuleError, choose_threshold, fold_conv_bn)
from snn_det.pipeline import convert_backbone
from snn_det.conversion.ops import AnnOps
from snn_det.neurons.quantizers import clip_round
from mmdet.registry import MODELS


def test_fold_bn_is_exact():
    conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
    bn = nn.BatchNorm2d(6)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.2, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 3, 9, 7)
    assert torch.allclose(fold_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5)


@pytest.mark.parametrize('name', ['resnet18', 'resnet50', 'darknet'])
def test_graph_reproduces_the_ann_and_snn_converges(name):
    bb = tiny_spiking(name, conversion=dict(threshold='max', channel_wise=False))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = bb.ann(x)
        via_graph = bb.graph.forward(x, AnnOps(bb.graph))
    for a, b in zip(ref, via_graph):
        assert torch.allclose(a, b, atol=1e-5)
    errs = []
    convert_backbone(bb, [torch.rand(4, 3, 64, 64)], [8, 256], progress=False)
    with torch.no_grad():
        for T in (8, 256):
            bb.set_mode('snn', T)
            out = bb(x)
            assert len(out) == len(ref)
            errs.append(rel_error(ref[-1], out[-1]))
    assert errs[1] < errs[0], errs
    assert errs[1] < 0.05, errs


def test_folded_snn_weights_match_ann_at_every_site():
    bb = tiny_spiking('resnet18')
    convert_backbone(bb, [torch.rand(2, 3, 32, 32)], [4], progress=False)
    net = bb.snn['T4']
    x = torch.rand(1, 3, 40, 48)
    convs = {p: net.conv(p) for p in bb.graph.units}
    with torch.no_grad():
        a = bb.graph.forward(x, AnnOps(bb.graph))
        b = bb.graph.forward(x, AnnOps(bb.graph, convs=convs))
    for u, v in zip(a, b):
        assert torch.allclose(u, v, atol=1e-4)


def test_sites_are_per_call_and_stem_pools_before_its_neuron():
    bb = tiny_spiking('resnet18')
    names = [s.name for s in bb.graph.sites]
    assert names[0] == 'relu' and bb.graph.sites[0].post is bb.ann.maxpool
    # BasicBlock: two call sites of the one shared nn.ReLU, the second after the add
    assert 'layer1.0.act1' in names and 'layer1.0.act_out' in names
    assert bb.graph.site('layer1.0.act_out').residual
    assert len(names) == 1 + 8 * 2


def test_varying_input_sizes_and_chunks():
    bb = tiny_spiking('resnet18', chunk_size=3)
    convert_backbone(bb, [torch.rand(2, 3, 64, 64)], [8], progress=False)
    bb.set_mode('snn', 8)
    with torch.no_grad():
        a = bb(torch.rand(2, 3, 96, 128))
        b = bb(torch.rand(1, 3, 160, 96))
        bb.chunk_size = None
        x = torch.rand(1, 3, 64, 64)
        full = bb(x)
        bb.chunk_size = 3
        chunked = bb(x)
    assert a[0].shape[-2:] == (24, 32) and b[0].shape[-2:] == (40, 24)
    for u, v in zip(full, chunked):
        assert torch.allclose(u, v, atol=1e-5)


def test_checkpoint_round_trip_restores_identical_outputs(tmp_path):
    conv = dict(threshold='mmse', channel_wise=True, calib=['bias'])
    bb = tiny_spiking('darknet', conversion=conv)
    convert_backbone(bb, [torch.rand(2, 3, 64, 64)], [4, 8], progress=False)
    path = tmp_path / 'snn.pth'
    torch.save({'state_dict': bb.state_dict()}, path)
    state = torch.load(path, weights_only=True)['state_dict']
    cfg = dict(type='SpikingBackbone', backbone=dict(type='ScaledDarknet', widen_factor=0.125,
               stage_blocks=(1, 1, 2, 2, 1)), conversion=conv, converted_T=[4, 8], T=8)
    clone = MODELS.build(cfg).eval()
    clone.load_state_dict(state)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        for T in (4, 8):
            bb.set_mode('snn', T)
            clone.set_mode('snn', T)
            for u, v in zip(bb(x), clone(x)):
                assert torch.equal(u, v)


def test_missing_converted_buffers_is_an_error():
    from mmengine.runner.checkpoint import load_state_dict
    ann = MODELS.build(dict(type='ResNet', depth=18, base_channels=8))
    cfg = dict(type='SpikingBackbone', backbone=dict(type='ResNet', depth=18, base_channels=8),
               converted_T=[8])
    snn = MODELS.build(cfg)
    with pytest.raises(ConversionStateError, match='lacks the converted state'):
        load_state_dict(snn, ann.state_dict(), strict=False)


def test_ann_checkpoint_keys_are_unchanged():
    ann = MODELS.build(dict(type='ResNet', depth=18, base_channels=8))
    bb = MODELS.build(dict(type='SpikingBackbone',
                           backbone=dict(type='ResNet', depth=18, base_channels=8)))
    assert set(ann.state_dict()) == set(bb.state_dict())
    bb.load_state_dict(ann.state_dict())     # strict: every key matches


def test_unsupported_module_names_path_and_type():
    cfg = dict(type='SpikingBackbone', backbone=dict(
        type='ResNet', depth=18, base_channels=8,
        norm_cfg=dict(type='GN', num_groups=4)))
    with pytest.raises(UnsupportedModuleError, match=r"'gn1' of type GroupNorm"):
        MODELS.build(cfg)


def test_simulating_before_conversion_is_an_error():
    bb = tiny_spiking('resnet18')
    bb.set_mode('snn', 8)
    with pytest.raises(ConversionStateError, match='not been converted'):
        bb(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize('T', [0, -3, 2.5])
def test_bad_T_is_rejected(T):
    with pytest.raises(ValueError, match='T must be a positive'):
        tiny_spiking('resnet18', T=T)


def test_thresholds_max_percentile_mmse():
    torch.manual_seed(1)
    z = torch.randn(4, 3, 16, 16) * torch.tensor([0.5, 1.0, 2.0]).reshape(1, 3, 1, 1)
    obs = ActivationObserver(3)
    obs.update(z)
    mx = choose_threshold(obs, 'max', channel_wise=True).reshape(-1)
    assert torch.allclose(mx, z.amax(dim=(0, 2, 3)))
    layer_max = choose_threshold(obs, 'max', channel_wise=False)
    assert layer_max.shape == (1, 1, 1, 1) and float(layer_max) == pytest.approx(float(z.max()))
    p = choose_threshold(obs, 'percentile', channel_wise=True, percentile=90).reshape(-1)
    for c in range(3):
        pos = z[:, c][z[:, c] > 0]
        assert float(p[c]) == pytest.approx(float(torch.quantile(pos, 0.9)), rel=1e-4)
    T = 8
    m = choose_threshold(obs, 'mmse', T=T, channel_wise=True, grid=100).reshape(-1)
    for c in range(3):   # brute force Algo. 1 on the same grid
        zc = z[:, c].reshape(-1)
        grid = torch.arange(1, 101) / 100 * zc.max()
        mse = torch.stack([((clip_round(zc, T, g) - zc.clamp_min(0)) ** 2).mean() for g in grid])
        assert float(m[c]) == pytest.approx(float(grid[mse.argmin()]), rel=1e-5)
        assert m[c] < zc.max()


def test_conversion_options_are_validated():
    with pytest.raises(ValueError, match='threshold must be one of'):
        ConversionConfig(threshold='median')
    with pytest.raises(KeyError, match='unknown conversion option'):
        ConversionConfig.from_dict(dict(treshold='max'))
    assert ConversionConfig(calib='acp').calib == ['potential', 'weights']
    assert ConversionConfig(calib='lcp').calib == ['bias']


def test_observers_are_let_go_before_calibration_and_T_order_does_not_matter():
    """Thresholds for every T are chosen before calibration starts, so the observers'
    samples (MMSE's, ~16 MB per site at R50 scale) are not held while it runs; and a
    net calibrated for T in a list of T's equals the net converted for that T alone."""
    import copy
    import gc
    conv = dict(threshold='mmse', channel_wise=True, shift='potential', calib=['bias'])
    bb = tiny_spiking('resnet18', conversion=conv)
    alone = copy.deepcopy(bb)
    batches = [torch.rand(2, 3, 48, 48)]
    alive = []

    def after_site(name):
        gc.collect()
        alive.append(sum(type(o) is ActivationObserver for o in gc.get_objects()))

    convert_backbone(bb, batches, [8, 16], progress=False, after_site=after_site)
    assert len(alive) == 2 * len(bb.graph.sites) and max(alive) == 0
    convert_backbone(alone, batches, [16], progress=False)
    a, b = bb.snn['T16'], alone.snn['T16']
    for site in bb.graph.sites:
        assert torch.equal(a.neuron(site.name).threshold, b.neuron(site.name).threshold)
        assert torch.equal(a.conv(site.owner).bias, b.conv(site.owner).bias)
