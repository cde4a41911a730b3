"""Spikes into every synapse (``spiking_fpn``, issue 45): signed neurons with negative
slope 1 (the identity of seed 003 Eq. 22's LeakyReLU) on FPN's laterals and outputs, so
that in the fully spiking RetinaNet no convolution after the first layer takes analog
input.  Checked: the ANN graph is still mmdet's own forward bit for bit (the sites are
identities there); the sites are where the docstring says, in execution order; every
convolution input of neck and head is a spike train in simulation, so the energy count
has no MACs past the first layer; the SNN approaches the ANN as T grows; the option is
refused where it cannot hold (two-stage, scope backbone) with a one-line error."""
import pytest
import torch

from test_scope import _convert, build, head_outputs
from snn_det.analysis.firing import is_spike_train, measure_firing
from snn_det.conversion import UnsupportedModuleError
from snn_det.neurons import SignedIFNeuron

SPIKING = dict(conversion=dict(threshold='mmse', channel_wise=True, spiking_fpn=True))


@pytest.fixture(autouse=True)
def _mmdet_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


def test_the_anns_graph_is_still_mmdets_forward_and_the_sites_are_in_order():
    ann, snn = build('retinanet', 'full', **SPIKING)
    x = torch.rand(2, 3, 64, 96)
    for a, b in zip(head_outputs(ann, x, 'full'), head_outputs(snn, x, 'full')):
        assert torch.equal(a, b)
    g = snn.backbone.graph
    neck = [s.name for s in g.sites if s.name.startswith('neck.')]
    assert neck == ['neck.lateral_convs.2.spike', 'neck.lateral_convs.1.spike',
                    'neck.lateral_convs.0.spike'] + [f'neck.fpn_convs.{i}.spike'
                                                     for i in range(5)]
    sites = {s.name: s for s in g.sites}
    assert all(sites[n].negative_slope == 1.0 for n in neck)
    assert sites['neck.lateral_convs.0.spike'].residual    # + the upsampled level above
    assert not sites['neck.lateral_convs.2.spike'].residual
    # the sites sit between FPN and the head, in the order the forward meets them
    kinds = [s.name.split('.')[0] for s in g.sites]
    first, last = kinds.index('neck'), len(kinds) - 1 - kinds[::-1].index('neck')
    assert set(kinds[:first]) - {'neck', 'bbox_head'} and 'bbox_head' not in kinds[:first]
    assert kinds[first:last + 1] == ['neck'] * len(neck)
    assert set(kinds[last + 1:]) == {'bbox_head'}


def test_every_convolution_after_the_first_takes_spikes_and_costs_no_mac():
    _, snn = build('retinanet', 'full', **SPIKING)
    x = torch.rand(2, 3, 64, 64)
    net = _convert(snn, [x], 8)
    assert all(isinstance(net.neuron(n), SignedIFNeuron) and
               net.neuron(n).negative_slope == 1.0
               for n in (s.name for s in snn.backbone.graph.sites) if n.startswith('neck.'))
    analog = []

    def rec(kind, name, t, steps):
        if kind == 'conv_in' and steps is not None and not is_spike_train(t):
            analog.append(name)
    net.simulate(x, 8, recorder=rec)
    assert analog == []
    first = measure_firing(net, [x], 8)
    # the same network without the option: FPN's output convolutions and the head's first
    # convolutions multiply analog currents at every step
    _, plain = build('retinanet', 'full')
    ref = measure_firing(_convert(plain, [x], 8), [x], 8)
    stem = net.conv('conv1')
    stem_macs = (32 * 32) * stem.out_channels * 3 * 7 * 7      # 64x64 input, stride 2
    assert first['macs_per_image'] == stem_macs
    assert ref['macs_per_image'] > 4 * stem_macs


def test_the_spiking_fpn_approaches_the_ann_as_T_grows():
    ann, snn = build('retinanet', 'full', **SPIKING)
    x = torch.rand(2, 3, 64, 64)
    ref = head_outputs(ann, x, 'full')
    errs = {}
    for T in (8, 128):
        _convert(snn, [x], T)
        snn.backbone.set_mode('snn', T)
        got = head_outputs(snn, x, 'full')
        errs[T] = sum(float((a - b).pow(2).sum()) for a, b in zip(ref, got)) / \
            sum(float(a.pow(2).sum()) for a in ref)
    assert errs[128] < 0.35 * errs[8], errs


def test_spiking_fpn_is_refused_where_it_cannot_hold():
    with pytest.raises(UnsupportedModuleError, match='spiking_fpn is for single-stage'):
        build('faster_rcnn', 'full', **SPIKING)
    with pytest.raises(ValueError, match='spiking_fpn needs scope'):
        build('retinanet', 'backbone', **SPIKING)


def test_stage_one_fine_tunes_the_new_sites_with_their_qc_function():
    """Stage I (seed 003 Sec. V-A) with --spiking-fpn: each FPN site gets a signed QC
    activation (Eq. 12 on the identity, negative slope 1: clip to [-theta, theta]) and the
    detector's loss reaches its threshold through it."""
    from test_scope import RETINA, _gt_samples
    from snn_det.neurons.qc import QCActivation
    RETINA['train_cfg'] = dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False)
    try:
        _, qc = build('retinanet', 'full',  # thresholds as QCThresholdInitHook would set
                      act_cfg=dict(type='QCActivation', T=4, p=1.0, init_threshold=1.0),
                      **SPIKING)
    finally:
        RETINA.pop('train_cfg')
    acts = qc.backbone.site_activations()
    neck = [s.name for s in qc.backbone.graph.sites if s.name.startswith('neck.')]
    assert len(neck) == 8 and all(isinstance(acts[n], QCActivation) and
                                  acts[n].negative_slope == 1.0 for n in neck)
    a = QCActivation(T=4, init_threshold=1.0, negative_slope=1.0).eval()
    z = torch.tensor([-3.0, -0.2, 0.2, 3.0])     # g(z) = clip(round(z T / theta) theta / T)
    assert torch.equal(a(z), torch.tensor([-1.0, -0.25, 0.25, 1.0]))
    qc.train()
    torch.manual_seed(0)
    losses = qc.loss(torch.rand(2, 3, 64, 64), _gt_samples(2, 64, 64))
    total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
    total.backward()
    grads = {n: acts[n].threshold.grad for n in neck}
    assert all(g is not None and float(g.abs()) > 0 for g in grads.values()), grads
