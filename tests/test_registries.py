"""Extension points (snn_det/registry.py): a new neuron, calibration step or graph is one
definition plus its registration, chosen by name from the conversion options."""
import pytest
import torch

from helpers import tiny_spiking
from snn_det.calibration import calibration_step
from snn_det.runtime.spike_codes import bitwise_equal
from snn_det.conversion import ConversionConfig, UnsupportedModuleError, build_graph, parse_calib
from snn_det.neurons import IFNeuron
from snn_det.pipeline import convert_backbone
from snn_det.registry import CALIBRATION_STEPS, GRAPHS, NEURONS


@pytest.fixture
def unregister():
    added = []
    yield added
    for registry, name in added:
        registry._module_dict.pop(name, None)


def test_a_registered_neuron_is_chosen_by_name_for_relu_sites(unregister):
    """A toy neuron kind (an IF neuron subclass, one builder + its registration) is put
    on every ReLU site by ``relu_neuron``; it simulates as the IF neuron, bit for bit."""
    class CountingIF(IFNeuron):
        pass

    @NEURONS.register_module(name='counting_if')
    def build(site, channel_wise=True, rounding=True):
        return CountingIF(site.channels, channel_wise)
    unregister.append((NEURONS, 'counting_if'))

    x = torch.rand(2, 3, 32, 32)
    outs = {}
    for kind in ('if', 'counting_if'):
        torch.manual_seed(0)
        bb = tiny_spiking('resnet18', T=8)
        cfg = ConversionConfig(threshold='max', relu_neuron=kind)
        convert_backbone(bb, [x], [8], cfg, progress=False)
        net = bb.spiking_net(8)
        want = CountingIF if kind == 'counting_if' else IFNeuron
        assert all(type(n) is want for n in net.neurons.values())
        outs[kind] = net.simulate(x, 8)
    assert all(bitwise_equal(a, b) for a, b in zip(outs['if'], outs['counting_if']))
    with pytest.raises(ValueError, match="relu_neuron must be one of .*'counting_if'"):
        ConversionConfig(relu_neuron='lif')


def test_a_registered_calibration_step_runs_at_every_site_in_its_order(unregister):
    """A toy step (one function + ``calibration_step``) is run once per site, after the
    steps of a lower order, with the context of that site; here it sets every initial
    potential to theta/2 (the ClipRound shift, seed 002 Theorem 2) after bias calibration
    started from zero potentials."""
    seen = []

    @calibration_step('half_potential', order=100)
    def half_potential(ctx):
        seen.append((ctx.site, ctx.T, tuple(ctx.cfg.calib)))
        neuron = ctx.net.neuron(ctx.site)
        neuron.v0 = neuron.threshold / 2
    unregister.append((CALIBRATION_STEPS, 'half_potential'))

    assert parse_calib('half_potential,lcp') == ['bias', 'half_potential']
    torch.manual_seed(0)
    bb = tiny_spiking('resnet18', T=8)
    x = torch.rand(2, 3, 32, 32)
    cfg = ConversionConfig(threshold='max', shift='none', calib='lcp,half_potential')
    convert_backbone(bb, [x], [8], cfg, progress=False)
    net = bb.spiking_net(8)
    assert [s for s, _, _ in seen] == [s.name for s in bb.graph.sites]
    assert {(T, c) for _, T, c in seen} == {(8, ('bias', 'half_potential'))}
    for site in bb.graph.sites:
        n = net.neuron(site.name)
        assert torch.equal(n.v0.reshape(-1), (n.threshold / 2).reshape(-1).expand_as(
            n.v0.reshape(-1)))
    with pytest.raises(ValueError, match=r"unknown calibration 'nope'.*'half_potential'"):
        parse_calib('nope')


def test_graphs_are_found_by_the_type_they_convert(unregister):
    """Backbones match along their class hierarchy (a subclass of ResNet converts with
    ResNet's graph); an unregistered type is refused naming the registered ones."""
    from mmdet.models.backbones.resnet import ResNet

    class MyResNet(ResNet):
        pass
    bb = MyResNet(depth=18, base_channels=8, out_indices=(0, 1, 2, 3))
    assert type(build_graph(bb)).__name__ == 'ResNetGraph'
    with pytest.raises(UnsupportedModuleError, match='supported backbones are Darknet, ResNet'):
        build_graph(torch.nn.Conv2d(3, 8, 3))
    assert {'ResNet', 'Darknet', 'FPN', 'YOLOV3Neck', 'RetinaHead', 'YOLOV3Head'} <= \
        set(GRAPHS.module_dict)


def test_a_registered_target_check_is_named_by_a_benchmark_config(unregister, tmp_path):
    """A toy target check (one function + its registration) is named by a benchmark
    config's ``targets``; the results' rows are judged by it (and the config's other
    target by a built-in check on the same rows)."""
    from snn_det.analysis.targets import Measured, targets_rows
    from snn_det.registry import TARGET_CHECKS

    @TARGET_CHECKS.register_module(name='ann_at_least')
    def ann_at_least(bound):
        def check(result):
            ann = next(r['AP'] for r in result['results'] if r['method'] == 'ANN')
            return Measured(f'ANN {100 * ann:.1f}', ann >= bound, '')
        return check
    unregister.append((TARGET_CHECKS, 'ann_at_least'))
    cfg = tmp_path / 'toy_bench.py'
    cfg.write_text(
        "benchmark = dict(name='toy')\n"
        "targets = [dict(what='ANN', target='>= 50', check=dict(type='ann_at_least', bound=0.5)),\n"
        "           dict(what='B at T=8', target='>= 90% of the ANN',\n"
        "                check=dict(type='ratio_at', method='B', T=8, bound=0.9))]\n")
    result = dict(name='toy', config=str(cfg), T=[8], results=[
        dict(detector='D', method='ANN', T=None, AP=0.6),
        dict(detector='D', method='B', T=8, AP=0.5)])
    rows = targets_rows({'toy': result})
    assert [(r.what, r.measured, r.met) for r in rows] == [
        ('ANN', 'ANN 60.0', 'yes'), ('B at T=8', 'D 50.0 (83.3%)', 'no')]
