"""Parameter calibration (seed 001 LCP/ACP) on tiny backbones."""
import pytest
import torch

from helpers import ann_site_outputs, snn_site_rates, tiny_spiking
from snn_det.calibration.bias import calibrate_bias
from snn_det.calibration.collect import ann_site, snn_site
from snn_det.calibration.potential import calibrate_potential
from snn_det.calibration.weights import calibrate_weights
from snn_det.pipeline import build_spiking_net, convert_backbone, observe
from mmdet.registry import MODELS


def _setup(name='resnet18', T=8, **conv):
    bb = tiny_spiking(name, conversion=dict(threshold='mmse', channel_wise=True, **conv))
    batches = [torch.rand(4, 3, 48, 48), torch.rand(4, 3, 48, 48)]
    obs = observe(bb.graph, batches)
    net = build_spiking_net(bb.graph, obs, T, bb.conversion)
    return bb, net, batches


def _mean_err(bb, net, batches, site, T):
    """Per-channel mean of e = x - s_bar (Eq. 19), measured independently of snn_det's
    calibration helpers: hooks on mmdet's own ANN modules and on the site's neuron."""
    e = [ann_site_outputs(bb, x)[site] - snn_site_rates(net, x, T, [site])[site]
         for x in batches]
    return torch.cat(e).mean(dim=(0, 2, 3))


def test_bias_calibration_adds_the_channel_mean_error_to_the_bias():
    bb, net, batches = _setup()
    T = 8
    for site in [s.name for s in bb.graph.sites][:6]:
        e = _mean_err(bb, net, batches, site, T)
        conv = net.conv(bb.graph.site(site).owner)
        b0 = conv.bias.clone()
        calibrate_bias(bb.graph, net, batches, site, T)
        # Eq. 20: b := b + mu_c(x - s_bar), exactly
        assert torch.allclose(conv.bias, b0 + e, atol=1e-6)
        after = _mean_err(bb, net, batches, site, T)
        # the SNN's per-channel mean output moves onto the ANN's (quantization leaves a
        # remainder below one spike step, theta/T)
        theta = net.neuron(site).threshold.reshape(-1)
        assert after.abs().mean() < e.abs().mean()
        assert bool((after.abs() <= theta / T + 1e-6).all())


def test_channel_potentials_broadcast_to_any_size_and_elementwise_is_fixed():
    bb, net, batches = _setup()
    site = bb.graph.sites[3].name
    calibrate_potential(bb.graph, net, batches, site, 8, granularity='channel')
    v0 = net.neuron(site).v0
    assert v0.shape == (1, bb.graph.sites[3].channels, 1, 1)
    bb.add_spiking_net(net)
    bb.set_mode('snn', 8)
    with torch.no_grad():
        bb(torch.rand(1, 3, 64, 80))   # another input size works
    _, net2, _ = _setup()
    calibrate_potential(bb.graph, net2, batches, site, 8, granularity='element')
    assert net2.neuron(site).v0.shape[-2:] == (12, 12)
    bb.snn['T8'] = net2
    with pytest.raises(ValueError, match='element-wise initial potential'):
        with torch.no_grad():
            bb(torch.rand(1, 3, 64, 80))


def test_potential_calibration_follows_eq_22():
    bb, net, batches = _setup()
    site = bb.graph.sites[2].name
    e = _mean_err(bb, net, batches, site, 8).reshape(1, -1, 1, 1)
    v_before = net.neuron(site).v0.clone()
    calibrate_potential(bb.graph, net, batches, site, 8)
    assert torch.allclose(net.neuron(site).v0, v_before + 8 * e, atol=1e-5)


def test_weight_calibration_lowers_the_layer_mse_against_its_cached_target():
    bb, net, batches = _setup(T=4)
    site = 'layer1.0.act_out'          # residual site: shortcut contribution included
    info = bb.graph.site(site)

    def mse():
        tot = 0.0
        for x in batches:
            t = ann_site(bb.graph, x, site)['site_out']
            s = snn_site(net, x, site, 4)['site_out']
            tot += float(((t - s) ** 2).sum(1).mean())
        return tot

    before = mse()
    res = calibrate_weights(bb.graph, net, batches, site, 4, iters=200, lr=1e-4, batch_size=4)
    assert res['after'] < res['before']
    assert mse() < before
    assert info.residual


def test_acp_lcp_pipeline_and_two_T_round_trip(tmp_path):
    conv = dict(threshold='mmse', channel_wise=True, calib='lcp+acp', weight_iters=20,
                weight_lr=1e-3)
    bb = tiny_spiking('resnet18', conversion=conv)
    convert_backbone(bb, [torch.rand(2, 3, 32, 32)], [4, 8], progress=False)
    assert bb.converted_T == [4, 8]
    path = tmp_path / 'c.pth'
    torch.save({'state_dict': bb.state_dict()}, path)
    clone = MODELS.build(dict(type='SpikingBackbone', backbone=dict(
        type='ResNet', depth=18, base_channels=8, out_indices=(0, 1, 2, 3)),
        conversion=conv, converted_T=[4, 8])).eval()
    clone.load_state_dict(torch.load(path, weights_only=True)['state_dict'])
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        for T in (4, 8):
            bb.set_mode('snn', T)
            clone.set_mode('snn', T)
            assert clone.spiking_net(T).num_steps == T
            for a, b in zip(bb(x), clone(x)):
                assert torch.equal(a, b)


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_frontier_observes_the_site_on_its_way_with_the_numbers_of_a_separate_pass(
        name, monkeypatch):
    """``Frontier.advance(observe=site)`` runs each new time chunk on to the site: the
    error it keeps (ANN output minus time-averaged spikes, in the frontier's cache) is that
    of separate passes from the frontier, bit for bit (given once); and LCP through it
    sets the biases LCP sets without it."""
    from snn_det.calibration.frontier import Frontier
    from snn_det.pipeline import calibrate
    from snn_det.conversion.config import ConversionConfig
    bb, net, batches = _setup(name)
    T, chunk = 8, 3
    graph = bb.graph
    seen = 0
    from snn_det.runtime.cache import CalibrationCache
    for x in batches:
        # a budget of 0: what a frontier keeps, the observed error included, is in files
        fused, plain = Frontier(x, CalibrationCache(0)), Frontier(x)
        for site in graph.sites:
            seg = graph.segment_of(site.name)
            moves = seg != fused.segment
            fused.advance(graph, net, seg, T, chunk, observe=site.name)
            plain.advance(graph, net, seg, T, chunk)
            if moves:
                assert fused._observed[2].raw.on_disk
            got = fused.take_observed(site.name)
            assert fused.take_observed(site.name) is None            # given once
            if not moves:                    # nothing run: the caller makes the passes
                assert got is None
                continue
            seen += 1
            e = ann_site(graph, plain, site.name)['site_out'] - snn_site(
                net, plain, site.name, T, chunk, keys=('site_out',))['site_out']
            assert torch.equal(got, e), site.name
        fused.cache.close()
    assert seen >= len(graph.sites) - 2
    cfg = ConversionConfig.from_dict(dict(threshold='mmse', calib='lcp'))
    _, ref_net, _ = _setup(name)
    ref_net.load_state_dict(net.state_dict())
    calibrate(graph, net, batches, cfg, chunk, progress=False)
    monkeypatch.setattr(Frontier, 'take_observed', lambda self, site: None)
    calibrate(graph, ref_net, batches, cfg, chunk, progress=False)
    for key, conv in net.convs.items():
        assert torch.equal(conv.bias, ref_net.convs[key].bias), key


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_frontier_runs_each_segment_once_with_the_same_result_as_from_the_image(name):
    """Calibrating from the frontier (segment input cached per batch) reproduces the
    quadratic schedule (every site run from the image) exactly: same site inputs and
    outputs at every site, and the same LCP biases after the whole pipeline."""
    from snn_det.calibration.frontier import Frontier
    from snn_det.pipeline import calibrate
    from snn_det.conversion.config import ConversionConfig
    bb, net, batches = _setup(name)
    T, chunk = 8, 3                        # uneven chunks: 3 + 3 + 2 steps
    graph = bb.graph
    assert len(graph.segments) > 4 and sum(map(len, graph.segments)) == len(graph.sites)
    frontiers = [Frontier(x) for x in batches]
    for site in graph.sites:
        seg = graph.segment_of(site.name)
        for f, x in zip(frontiers, batches):
            f.advance(graph, net, seg, T, chunk)
            ref_s, got_s = snn_site(net, x, site.name, T, chunk), \
                snn_site(net, f, site.name, T, chunk)
            for k in ('site_in', 'site_out', 'conv_in'):
                assert torch.allclose(got_s[k], ref_s[k], atol=1e-6), (site.name, k)
            # LCP sums only s-bar: the same numbers, bit for bit, and nothing else
            only = snn_site(net, f, site.name, T, chunk, keys=('site_out',))
            assert set(only) == {'site_out'} and torch.equal(only['site_out'],
                                                             got_s['site_out'])
            # time chunks only bound memory: one chunk of all T steps gives the same rates
            whole = snn_site(net, x, site.name, T, None)['site_out']
            assert torch.allclose(whole, ref_s['site_out'], atol=1e-5), site.name
            ref_a, got_a = ann_site(graph, x, site.name), ann_site(graph, f, site.name)
            assert torch.allclose(got_a['site_out'], ref_a['site_out'], atol=1e-6)
    # the full LCP pipeline: frontier-based calibrate() == per-site runs from the image
    _, ref_net, _ = _setup(name)
    ref_net.load_state_dict(net.state_dict())
    cfg = ConversionConfig.from_dict(dict(threshold='mmse', calib='lcp'))
    calibrate(graph, net, batches, cfg, chunk, progress=False)
    for site in graph.sites:
        calibrate_bias(graph, ref_net, batches, site.name, T, chunk)
    for key, conv in net.convs.items():
        assert torch.allclose(conv.bias, ref_net.convs[key].bias, atol=1e-5), key
    # the frontier holds one boundary: it cannot move back, nor change T or chunking
    with pytest.raises(ValueError, match='back'):
        frontiers[0].advance(graph, net, 0, T, chunk)
    with pytest.raises(ValueError, match='one spiking net'):
        frontiers[0].advance(graph, net, len(graph.segments) - 1, 16, chunk)
