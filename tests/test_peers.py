"""Peers (snn_det.peers): other libraries' conversions run as snn-det's backbone nets.

Needs SpikingJelly 2.0 (and sinabs 3.1 for its tests), installed by tools/setup_env.sh
from requirements/benchmarks.txt.
"""
import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn

spikingjelly = pytest.importorskip(
    'spikingjelly.activation_based.ann2snn',
    reason='SpikingJelly 2.0 is not installed (requirements/benchmarks.txt)')

from snn_det.peers import PeerUnsupportedError, build_peer  # noqa: E402
from snn_det.peers.evaluate import evaluate_peer  # noqa: E402


class Block(nn.Module):
    """conv-BN-ReLU, conv-BN, + identity, ReLU (one ReLU module per site, or one shared)."""

    def __init__(self, c, shared_relu=False):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.relu2 = self.relu1 if shared_relu else nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + x)


class TinyResNet(nn.Module):
    """A stem, two residual blocks, a strided convolution: two outputs, as a backbone."""

    def __init__(self, shared_relu=False):
        super().__init__()
        self.stem, self.relu = nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()
        self.layer1 = Block(6, shared_relu)
        self.down, self.relu_down = nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU()
        self.layer2 = Block(8, shared_relu)

    def forward(self, x):
        a = self.layer1(self.relu(self.stem(x)))
        return a, self.layer2(self.relu_down(self.down(a)))


def _net(shared_relu=False):
    torch.manual_seed(0)
    net = TinyResNet(shared_relu)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):      # non-trivial folded statistics
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 10, 10, generator=g), \
        [torch.randn(4, 3, 10, 10, generator=g) for _ in range(2)]


def _rel_errors(outs, ref):
    return [float((o - r).abs().mean() / r.abs().mean()) for o, r in zip(outs, ref)]


@pytest.mark.parametrize('mode', ['max', '99.9%'])
def test_spikingjelly_rates_approach_the_ann(mode):
    net = _net()
    x, batches = _data()
    with torch.no_grad():
        ref = net(x)
    sim = build_peer(dict(type='spikingjelly', recipe='rate', mode=mode)).convert(net, batches)
    outs = sim.simulate_prefixes(x, [8, 64, 512])
    err = {T: max(_rel_errors(outs[T], ref)) for T in outs}
    assert err[8] > err[64] > err[512]
    assert err[512] < 0.05, err
    # the prefix read-out is the run of that many steps (state reset between images)
    alone = sim.simulate(x, 64)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(alone, outs[64]))
    # the detector's ANN is left as it was
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(net(x), ref))


@pytest.mark.parametrize('recipe', ['rate', 'ltb'])
def test_spikingjelly_multi_step_chunks_equal_its_single_step_loop(recipe):
    """The peer runs SpikingJelly's graph in multi-step chunks (3 steps here, across the
    readout T); its examples loop the single-step mode: the same numbers."""
    import copy

    from spikingjelly.activation_based import functional
    net = _net()
    x, batches = _data()
    sim = build_peer(dict(type='spikingjelly', recipe=recipe, chunk=3)).convert(net, batches)
    outs = sim.simulate_prefixes(x, [4, 10])
    single = copy.deepcopy(sim.net)
    functional.set_step_mode(single, 's')
    functional.reset_net(single)
    with torch.no_grad():
        steps = [single(x) for _ in range(10)]
    for T in (4, 10):
        loop = [sum(s[i] for s in steps[:T]) / T for i in range(2)]
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(outs[T], loop))


def test_spikingjelly_ltb_converges_to_its_balanced_thresholds():
    """LTB clips each channel at its balanced threshold: the rates converge (the error
    stops shrinking) to the clipped ANN, not necessarily to the ANN itself."""
    net = _net()
    x, batches = _data()
    with torch.no_grad():
        ref = net(x)
    sim = build_peer(dict(type='spikingjelly', recipe='ltb')).convert(net, batches)
    outs = sim.simulate_prefixes(x, [8, 256, 512])
    assert max(_rel_errors(outs[8], ref)) >= max(_rel_errors(outs[512], ref)) - 1e-3
    assert all(torch.allclose(a, b, atol=0.02 * float(b.abs().max()))
               for a, b in zip(outs[256], outs[512]))


def test_spikingjelly_ltb_as_its_example_runs_it():
    """``updates`` cycles the calibration batches: LTB's thresholds grow once per batch from
    zero, so more updates balance them higher (closer to the ANN here); ``delay_start``
    reads out as SpikingJelly's example does, each T averaging its steps from the
    clamped start (the clamp of ``estimate_delay_start``: at least 4 readout steps)."""
    from snn_det.peers.spikingjelly import SpikingJellyNet
    net = _net()
    x, batches = _data()
    with torch.no_grad():
        ref = net(x)

    def thresholds(sim):     # each LTB site's scaler after its neuron holds its thresholds
        return torch.cat([m.scale.reshape(-1) for name, m in sim.net.named_modules()
                          if name.endswith('scaler1')])
    few = build_peer(dict(type='spikingjelly', recipe='ltb')).convert(net, batches)
    many = build_peer(dict(type='spikingjelly', recipe='ltb', updates=40)).convert(net, batches)
    assert (thresholds(many) >= thresholds(few) - 1e-6).all()
    assert (thresholds(many) > thresholds(few) + 1e-6).any()
    err = {k: max(_rel_errors(s.simulate_prefixes(x, [256])[256], ref))
           for k, s in (('few', few), ('many', many))}
    assert err['many'] < err['few'], err

    class Counter(nn.Module):         # outputs t at step t (1-based), as K steps at once
        def __init__(self):
            super().__init__()
            self.t = 0

        def reset(self):
            self.t = 0

        def forward(self, x):
            k = x.shape[0]
            out = torch.arange(self.t + 1, self.t + k + 1, dtype=x.dtype).view(k, 1)
            self.t += k
            return out.expand(k, 2)
    sim = SpikingJellyNet(Counter(), chunk=3, delay_start=5)
    assert [sim.start_at(T) for T in (4, 8, 9, 16)] == [0, 3, 5, 5]
    outs = sim.simulate_prefixes(torch.zeros(2), [8, 16])
    assert torch.equal(outs[16][0], torch.full((2,), (6 + 16) / 2))   # steps 6..16
    assert torch.equal(outs[8][0], torch.full((2,), (4 + 8) / 2))     # steps 4..8


def test_sinabs_rates_approach_the_ann():
    pytest.importorskip('sinabs', reason='sinabs 3.1 is not installed '
                                          '(requirements/benchmarks.txt)')
    net = _net()
    x, batches = _data()
    with torch.no_grad():
        ref = net(x)
    sim = build_peer(dict(type='sinabs', chunk=5)).convert(net, batches)
    outs = sim.simulate_prefixes(x, [8, 64, 512])    # chunks of 5 across readout steps
    err = {T: max(_rel_errors(outs[T], ref)) for T in outs}
    assert err[8] > err[64] > err[512] and err[512] < 0.05, err


def test_sinabs_refuses_a_relu_module_called_at_two_sites():
    pytest.importorskip('sinabs', reason='sinabs 3.1 is not installed')
    x, batches = _data()
    with pytest.raises(PeerUnsupportedError, match='called at several sites'):
        build_peer(dict(type='sinabs')).convert(_net(shared_relu=True), batches)


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 4, 3), nn.ReLU()

    def forward(self, x):
        if x.sum() > 0:
            x = -x
        return (self.relu(self.conv(x)),)


class Leaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.1)

    def forward(self, x):
        return (self.act(self.conv(x)),)


def _runner(ann):
    """The part of a runner evaluate_peer reads before converting."""
    return SimpleNamespace(model=SimpleNamespace(backbone=SimpleNamespace(ann=ann.eval())))


@pytest.mark.parametrize('ann,peer,expect', [
    (Untraceable, dict(type='spikingjelly'), 'TraceError: symbolically traced variables'),
    (Leaky, dict(type='spikingjelly'), "ValueError: RateCodingRecipe step-mode backend does "
                                       "not support module node 'act' of type LeakyReLU"),
    (Leaky, dict(type='spikingjelly', recipe='ltb'),
     "ValueError: LocalThresholdBalancingRecipe step-mode backend does not support module "
     "node 'act' of type LeakyReLU"),
    (Leaky, dict(type='sinabs'), 'PeerUnsupportedError: sinabs.from_model replaces nn.ReLU '
                                 'modules only; LeakyReLU x1 would stay analog'),
])
def test_a_network_the_peer_cannot_convert_is_an_error_row(ann, peer, expect):
    _, batches = _data()
    rows, times = evaluate_peer(_runner(ann()), batches, peer, [8, 16], 'Net', 'peer')
    assert times == [] and len(rows) == 1
    row = rows[0]
    assert row['T'] is None and row['detector'] == 'Net' and row['method'] == 'peer'
    assert row['error'].startswith(expect.split(':')[0]) and expect in row['error']
    assert '\n' not in row['error'] and len(row['error']) <= 240
    assert re.match(peer['type'] + r' \d+\.\d+', row['peer']), row['peer']   # its version
    assert not any(k in row for k in ('AP', 'top1', 'mAP'))


def test_peer_net_inside_a_spiking_backbone():
    """A peer's net is simulated by SpikingBackbone in place of its own (the path the
    detector's neck and head read), one simulation read out at several T."""
    from snn_det.models.spiking_backbone import SpikingBackbone
    bb = SpikingBackbone(backbone=dict(type='ResNet', depth=18, base_channels=4,
                                       out_indices=(1, 2, 3), norm_eval=False,
                                       init_cfg=None)).eval()
    x, _ = _data()
    x = torch.nn.functional.interpolate(x, size=(32, 32))
    with torch.no_grad():
        ref = bb(x)
    sim = build_peer(dict(type='spikingjelly')).convert(bb.ann, [x])
    sim.num_steps = 32
    bb.add_spiking_net(sim)
    bb.share_readouts([8, 32])
    bb.set_mode('snn', 8)
    with torch.no_grad():
        o8 = bb(x)
        bb.T = 32
        o32 = bb(x)
    assert [o.shape for o in o8] == [r.shape for r in ref]
    e8, e32 = max(_rel_errors(o8, ref)), max(_rel_errors(o32, ref))
    assert e32 < e8


def test_sinabs_refuses_mmdet_resnet():
    """mmdet's BasicBlock calls self.relu twice: sinabs' module replacement cannot express it."""
    pytest.importorskip('sinabs', reason='sinabs 3.1 is not installed')
    from mmdet.models.backbones import ResNet
    ann = ResNet(depth=18, base_channels=4, out_indices=(1, 2, 3), init_cfg=None)
    ann.eval()
    with pytest.raises(PeerUnsupportedError, match=r'layer1\.0\.relu: 2\)'):
        build_peer(dict(type='sinabs')).convert(ann, [torch.randn(1, 3, 32, 32)])


def test_results_tables_show_a_peer_error_row():
    from snn_det.analysis.results import results_csv, results_markdown
    result = dict(name='peers', config='configs/benchmarks/peers.py', T=[8, 16], seed=0,
                  conversion_times=[], results=[
                      dict(detector='D', method='ANN', T=None, AP=0.5),
                      dict(detector='D', method='ours', T=8, AP=0.4),
                      dict(detector='D', method='ours', T=16, AP=0.45),
                      dict(detector='D', method='peer', T=None, error='ValueError: a | b')])
    md = results_markdown(result)
    assert '| peer | not converted: ValueError: a / b | |' in md
    assert '| ours | 40.0 (80%) | 45.0 (90%) |' in md
    csv = results_csv(result).splitlines()
    assert csv[0].endswith(',error') and csv[-1].endswith(',ValueError: a | b')
