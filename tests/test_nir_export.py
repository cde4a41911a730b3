"""NIR export (snn_det/export) read back with nir.read and simulated by runtimes no one here
wrote (sinabs, Norse), against snn-det's own simulation."""
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import ROOT, load_tool, randomize_bn
from mmdet.registry import MODELS
from snn_det.conversion.spiking_net import site_key
from snn_det.export import NIRExportError, export_nir
from snn_det.pipeline import convert_backbone

nir = pytest.importorskip('nir')   # requirements/tests.txt installs it (and the runtimes)

T = 8


def _tiny(backbone_type='ResNetCIFAR', **conversion):
    """Two stages of two BasicBlocks (an identity and a strided, projected shortcut)."""
    bb = MODELS.build(dict(
        type='SpikingBackbone', T=T, conversion=dict(dict(threshold='mmse', shift='bias'),
                                                     **conversion),
        backbone=dict(type=backbone_type, depth=18, num_stages=2, strides=(1, 2),
                      dilations=(1, 1), out_indices=(0, 1), base_channels=8,
                      norm_eval=True, frozen_stages=-1)))
    randomize_bn(bb).eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(2, 3, 16, 16, generator=g) for _ in range(2)]
    convert_backbone(bb, batches, [T], progress=False)
    return bb.snn[f'T{T}'], batches


@pytest.fixture(scope='module')
def tiny():
    return _tiny()


def test_export_reads_back_with_the_folded_parameters(tiny, tmp_path):
    net, batches = tiny
    path = str(tmp_path / 'tiny.nir')
    export_nir(net, path, (3, 16, 16))
    g = nir.read(path)
    graph = net.graph
    ifs = {k for k, v in g.nodes.items() if isinstance(v, nir.IF)}
    assert ifs == {site_key(s.name) for s in graph.sites}
    for s in graph.sites:
        node = g.nodes[site_key(s.name)]
        theta = net.neuron(s.name).threshold.reshape(-1, 1, 1).numpy()
        assert node.v_threshold.shape[0] == s.channels
        np.testing.assert_array_equal(node.v_threshold,
                                      np.broadcast_to(theta, node.v_threshold.shape))
        assert (node.r == 1).all() and (node.v_reset == 0).all()
    # conv1 reads the image; layer1.0.conv1 reads the stem's spikes: its weights carry theta
    np.testing.assert_array_equal(g.nodes['conv1'].weight, net.conv('conv1').weight.numpy())
    np.testing.assert_array_equal(g.nodes['conv1'].bias, net.conv('conv1').bias.numpy())
    th = net.neuron('relu').threshold.reshape(1, -1, 1, 1)
    np.testing.assert_array_equal(g.nodes['layer1_0_conv1'].weight,
                                  (net.conv('layer1.0.conv1').weight * th).numpy())
    # residual additions: two edges into each block's last neuron
    into = {}
    for src, dst in g.edges:
        into.setdefault(dst, []).append(src)
    assert sorted(into['layer1_0_act_out']) == ['layer1_0_conv2', 'layer1_0_shortcut']
    assert sorted(into['layer2_0_act_out']) == ['layer2_0_conv2', 'layer2_0_downsample_0']
    np.testing.assert_array_equal(g.nodes['layer1_0_shortcut'].weight[:, :, 0, 0],
                                  np.diag(net.neuron('relu').threshold.reshape(-1).numpy()))
    assert [into['output0'], into['output1']] == [['layer1_1_act_out'], ['layer2_1_act_out']]
    assert g.metadata['reset'] == 'subtract' and int(g.metadata['T']) == T


def test_sinabs_and_norse_simulate_the_file_against_snn_det(tiny, tmp_path):
    """sinabs reads an IF as its IAF with reset by subtraction (snn-det's neuron); Norse
    follows NIR's IF equations (reset to v_reset = 0, fire when u > theta).  The check
    measures, per site, what differs from snn-det's own simulation."""
    pytest.importorskip('sinabs')
    pytest.importorskip('norse')
    from snn_det.export.check import check_nir, snn_det_run
    net, batches = tiny
    path = str(tmp_path / 'tiny.nir')
    export_nir(net, path, (3, 16, 16))
    image = batches[0][:1]
    res = check_nir(net, nir.read(path), image, T)
    ours = snn_det_run(net, image, T)
    assert res['sinabs']['spikes_snn_det'] == sum(float(s.sum()) for s in ours['spikes'].values())
    assert res['sinabs']['spikes_snn_det'] > 0
    assert res['sinabs']['identical'], res['sinabs']
    assert max(res['sinabs']['readout_rel_error']) < 1e-10
    from snn_det.export.check import runtime_readout
    g = nir.read(path)
    for ro, ref in zip(runtime_readout(g, image, T, 'sinabs'), ours['readout']):
        torch.testing.assert_close(ro, ref, rtol=1e-6, atol=1e-7)
    # a hard reset loses the overshoot above theta: the counts differ, and it is measured
    assert not res['norse']['identical']
    assert 0 < res['norse']['differing_share'] < 1
    assert res['norse']['spikes_runtime'] < res['norse']['spikes_snn_det']


def test_what_nir_cannot_express_is_refused_and_nothing_is_written(tmp_path):
    net, _ = _tiny(shift='potential')              # v(0) = theta / 2: no NIR field
    path = tmp_path / 'x.nir'
    with pytest.raises(NIRExportError, match=r"site relu: initial potential .*--shift bias"):
        export_nir(net, str(path), (3, 16, 16))
    net, _ = _tiny('ResNet')                        # a 3x3 max-pool after conv1
    with pytest.raises(NIRExportError, match=r'maxpool: MaxPool2d.*--input current'):
        export_nir(net, str(path), (3, 16, 16))
    assert list(tmp_path.iterdir()) == []
    export_nir(net, str(path), (3, 16, 16), input='current')   # exact: the pooled current
    g = nir.read(str(path))
    assert 'conv1' not in g.nodes and g.metadata['input'] == 'current'
    net, _ = _tiny(relu_neuron='signed')
    with pytest.raises(NIRExportError, match=r'site relu: signed neuron'):
        export_nir(net, str(tmp_path / 'y.nir'), (3, 16, 16))
    assert not (tmp_path / 'y.nir').exists()


def test_tool_refuses_an_unconverted_config_in_one_line(tmp_path, capsys):
    tool = load_tool('export_nir')
    with pytest.raises(SystemExit) as e:
        tool.main([osp.join(ROOT, 'configs/cls/resnet18n_8xb64_synth-cls.py'),
                   osp.join(ROOT, 'checkpoints/cls_resnet18n_synth.pth'),
                   '--work-dir', str(tmp_path / 'w')])
    msg = str(e.value)
    assert msg.startswith('error: this config is not a converted one') and '\n' not in msg
    assert not (tmp_path / 'w').exists()


def test_a_registered_node_builder_exports_a_new_neuron_kind(tmp_path):
    """The exporter maps neurons to NIR nodes through snn_det.registry.NIR_NODES: a signed
    neuron is refused until a builder is registered for its class, then exported by it
    (a toy builder here: a CubaLIF node, to see that it is the one used)."""
    from snn_det.registry import NIR_NODES
    net, _ = _tiny(relu_neuron='signed')
    with pytest.raises(NIRExportError, match=r'site relu: signed neuron'):
        export_nir(net, str(tmp_path / 'a.nir'), (3, 16, 16))
    seen = []

    def toy(nir_, neuron, theta, shape):
        seen.append(type(neuron).__name__)
        c, h, w = shape
        one = np.ones((c, h, w), np.float32)
        return nir_.CubaLIF(tau_syn=one, tau_mem=one, r=one, v_leak=0 * one,
                            v_threshold=np.broadcast_to(theta.numpy().reshape(c, 1, 1),
                                                        (c, h, w)).copy(), w_in=one)
    NIR_NODES.register_module(name='SignedIFNeuron', module=toy)
    try:
        g = export_nir(net, str(tmp_path / 'b.nir'), (3, 16, 16))
    finally:
        NIR_NODES.module_dict.pop('SignedIFNeuron')
    assert set(seen) == {'SignedIFNeuron'} and len(seen) == len(net.graph.sites)
    assert all(isinstance(g.nodes[site_key(s.name)], nir.CubaLIF) for s in net.graph.sites)
    assert isinstance(nir.read(str(tmp_path / 'b.nir')).nodes['relu'], nir.CubaLIF)


def test_a_graph_without_a_registered_exporter_is_refused_in_one_line():
    from snn_det.export.nir import check_exportable
    net, _ = _tiny()

    class Other(type(net.graph)):       # not a registered graph class
        pass
    graph, net.graph.__class__ = net.graph.__class__, Other
    try:
        with pytest.raises(NIRExportError, match=r"^Other: no NIR export for this graph "
                                                 r"\(NIR export covers \['ResNet'\]"):
            check_exportable(net)
    finally:
        net.graph.__class__ = graph
