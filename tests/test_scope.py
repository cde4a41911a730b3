"""Whole-detector conversion (issue 13): spiking neck and head.

Tiny RetinaNet (ResNet-18 + FPN + RetinaHead) and YOLOv3 (Darknet + YOLOV3Neck +
YOLOV3Head) built through ``SpikingDetector``.  What is checked: the graph's ANN
is mmdet's own forward bit for bit; every activation of the scope is a neuron of
the right kind; the SNN's head outputs converge to the ANN's as T grows (rate
coding, seed 001 Eq. 8); the frontier reproduces from-the-image calibration on
named multi-tensor states; mmdet's own predict runs on the readout; checkpoints
of one scope are refused by another; unsupported parts fail naming the module.
"""
import copy

import pytest
import torch

from helpers import randomize_bn
from mmdet.registry import MODELS
from snn_det.calibration.bias import calibrate_bias
from snn_det.calibration.collect import ann_site, snn_site
from snn_det.calibration.frontier import Frontier
from snn_det.conversion import UnsupportedModuleError
from snn_det.conversion.config import ConversionConfig
from snn_det.pipeline import build_spiking_net, calibrate, observe
from snn_det.conversion.errors import ConversionStateError

RETINA = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]),
    backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(1, 2, 3),
                  norm_eval=True, frozen_stages=-1),
    neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=16, start_level=0,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=16, feat_channels=16,
                   stacked_convs=2,
                   anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                         scales_per_octave=1, ratios=[1.0],
                                         strides=[8, 16, 32, 64, 128]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                   target_stds=[1.0] * 4),
                   loss_cls=dict(type='FocalLoss', use_sigmoid=True, loss_weight=1.0),
                   loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=20))

YOLO = dict(
    type='YOLOV3',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]),
    backbone=dict(type='ScaledDarknet', widen_factor=0.125, stage_blocks=(1, 1, 2, 2, 1),
                  out_indices=(3, 4, 5)),
    neck=dict(type='YOLOV3Neck', num_scales=3, in_channels=[128, 64, 32],
              out_channels=[32, 16, 8]),
    bbox_head=dict(type='YOLOV3Head', num_classes=3, in_channels=[32, 16, 8],
                   out_channels=[64, 32, 16],
                   anchor_generator=dict(type='YOLOAnchorGenerator',
                                         base_sizes=[[(40, 30)], [(20, 16)], [(8, 10)]],
                                         strides=[32, 16, 8])),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                  nms=dict(type='nms', iou_threshold=0.45), max_per_img=20))

FRCNN = dict(
    type='FasterRCNN',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]),
    backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(0, 1, 2, 3),
                  norm_eval=True, frozen_stages=-1),
    neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5),
    rpn_head=dict(type='RPNHead', in_channels=16, feat_channels=16,
                  anchor_generator=dict(type='AnchorGenerator', scales=[8],
                                        ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
                  bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                  target_stds=[1.0] * 4),
                  loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                  loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(type='StandardRoIHead',
                  bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=16,
                                          roi_layer=dict(type='RoIAlign', output_size=7,
                                                         sampling_ratio=0),
                                          featmap_strides=[4, 8, 16, 32]),
                  bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32,
                                 roi_feat_size=7, num_classes=3,
                                 bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                                 target_means=[0.0] * 4,
                                                 target_stds=[0.1, 0.1, 0.2, 0.2]),
                                 loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
                                 loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=None,
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=40, nms=dict(type='nms', iou_threshold=0.7),
                           min_bbox_size=0),
                  rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                            max_per_img=20)))

DETECTORS = {'retinanet': RETINA, 'yolov3': YOLO, 'faster_rcnn': FRCNN}


@pytest.fixture(autouse=True)
def _mmdet_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


def build(name, scope='full', T=16, **bb_kw):
    """The ANN detector and the same weights in a SpikingDetector of ``scope``."""
    from mmengine.config import ConfigDict
    ann = MODELS.build(ConfigDict(copy.deepcopy(DETECTORS[name])))
    randomize_bn(ann).eval()
    cfg = copy.deepcopy(DETECTORS[name])
    conversion = bb_kw.pop('conversion', dict(threshold='mmse', channel_wise=True))
    cfg['backbone'] = dict(type='SpikingBackbone', backbone=cfg['backbone'], T=T, scope=scope,
                           conversion=conversion, **bb_kw)
    cfg['detector_type'], cfg['type'] = cfg['type'], 'SpikingDetector'
    snn = MODELS.build(ConfigDict(cfg))
    if not bb_kw.get('converted_T'):      # a converted config loads a converted checkpoint
        # QC activations (act_cfg) are not in the ANN's state: they start from their init
        snn.load_state_dict(ann.state_dict(), strict='act_cfg' not in bb_kw)
    return ann.eval(), snn.eval()


def flat(outs):
    return [t for o in outs for t in (o if isinstance(o, (list, tuple)) else [o])]


def head_outputs(model, x, scope):
    with torch.no_grad():
        feats = model.extract_feat(x)
        return flat(model.bbox_head(feats)) if scope == 'full' else list(feats)


@pytest.mark.parametrize('name', ['retinanet', 'yolov3'])
@pytest.mark.parametrize('scope', ['neck', 'full'])
def test_graph_ann_is_mmdets_own_forward(name, scope):
    ann, snn = build(name, scope)
    x = torch.rand(2, 3, 64, 96)
    ref = head_outputs(ann, x, scope)
    got = head_outputs(snn, x, scope)
    assert len(ref) == len(got)
    for a, b in zip(ref, got):
        assert torch.equal(a, b)


def test_every_activation_of_the_scope_is_a_neuron():
    _, retina = build('retinanet', 'full')
    g = retina.backbone.graph
    head_sites = [s for s in g.sites if s.name.startswith('bbox_head.')]
    assert len(head_sites) == 2 * 2 * 5          # 2 branches x 2 convs x 5 FPN levels
    assert not any(s.signed for s in head_sites)  # ReLU: IF neurons
    assert not [s for s in g.sites if s.name.startswith('neck.')]   # FPN is linear
    # each call of a shared head conv is its own unit (folded copy) and neuron
    assert 'bbox_head.cls_convs.0.conv@4' in g.units and 'bbox_head.retina_cls@0' in g.units
    _, yolo = build('yolov3', 'full')
    g = yolo.backbone.graph
    neck = [s for s in g.sites if s.name.startswith('neck.')]
    head = [s for s in g.sites if s.name.startswith('bbox_head.')]
    assert len(neck) == 3 * 5 + 2 and len(head) == 3   # DetectionBlocks, conv1/2, bridges
    assert all(s.signed and s.negative_slope == 0.1 for s in neck + head)   # Eq. 22
    _, yolo_neck = build('yolov3', 'neck')
    assert len(yolo_neck.backbone.graph.sites) == len(g.sites) - 3


def _convert(snn, batches, T, calib=()):
    bb = snn.backbone
    obs = observe(bb.graph, batches)
    cfg = ConversionConfig.from_dict(dict(threshold='max', channel_wise=True, calib=list(calib)))
    net = build_spiking_net(bb.graph, obs, T, cfg)
    if calib:
        calibrate(bb.graph, net, batches, cfg, progress=False)
    bb.add_spiking_net(net)
    return net


@pytest.mark.parametrize('name', ['retinanet', 'yolov3'])
def test_spiking_head_outputs_approach_the_ann_as_T_grows(name):
    """Rate coding (seed 001 Eq. 8): the SNN's time-averaged prediction maps converge to
    the ANN's; the error at T=128 is well below the error at T=8."""
    ann, snn = build(name, 'full')
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


@pytest.mark.parametrize('name', ['retinanet', 'yolov3'])
def test_frontier_on_named_states_matches_runs_from_the_image(name):
    """Layer-by-layer calibration across backbone -> neck -> head keeps named multi-tensor
    states at the boundaries (spike trains in bits); site inputs/outputs from the frontier
    equal those run from the image, and LCP gives the same biases either way."""
    _, snn = build(name, 'full')
    graph = snn.backbone.graph
    batches = [torch.rand(2, 3, 64, 64)]
    obs = observe(graph, batches)
    cfg = ConversionConfig.from_dict(dict(threshold='max', calib='lcp'))
    T, chunk = 6, 4
    net = build_spiking_net(graph, obs, T, cfg)
    ref_net = build_spiking_net(graph, obs, T, cfg)
    f = Frontier(batches[0])
    for site in graph.sites[::3]:
        f.advance(graph, net, graph.segment_of(site.name), T, chunk)
        a, b = snn_site(net, f, site.name, T, chunk), snn_site(net, batches[0], site.name, T,
                                                                chunk)
        for k in ('site_in', 'site_out'):
            assert torch.equal(a[k], b[k]), (site.name, k)
        assert torch.equal(ann_site(graph, f, site.name)['site_out'],
                           ann_site(graph, batches[0], site.name)['site_out'])
    # past the backbone the boundary is a dict of named spike trains, stored in bits
    assert isinstance(f._snn[0], dict) and all(e.is_spikes for e in f._snn[0].values())
    calibrate(graph, net, batches, cfg, chunk, progress=False)
    for site in graph.sites:
        calibrate_bias(graph, ref_net, batches, site.name, T, chunk)
    for key, conv in net.convs.items():
        assert torch.allclose(conv.bias, ref_net.convs[key].bias, atol=1e-5), key


def test_calibration_of_the_head_lowers_its_error():
    ann, snn = build('retinanet', 'full')
    x = torch.rand(4, 3, 64, 64)
    ref = head_outputs(ann, x, 'full')
    errs = {}
    for calib in ((), ('bias',)):
        _convert(snn, [x], 8, calib)
        snn.backbone.set_mode('snn', 8)
        got = head_outputs(snn, x, 'full')
        errs[calib] = sum(float((a - b).pow(2).sum()) for a, b in zip(ref, got))
    assert errs[('bias',)] < errs[()]


def test_mmdet_predict_runs_on_the_spiking_readout_and_checkpoints_know_their_scope():
    from mmdet.structures import DetDataSample
    ann, snn = build('retinanet', 'full', T=8)
    x = torch.rand(1, 3, 64, 64)
    _convert(snn, [x], 8)
    snn.backbone.set_mode('snn', 8)
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1.0, 1.0), pad_shape=(64, 64)))
    with torch.no_grad():
        res = snn.predict(x, [sample])
    assert res[0].pred_instances.bboxes.shape[1] == 4
    state = snn.state_dict()
    assert 'bbox_head.cls_convs.0.conv.weight' in state          # ANN keys unchanged
    assert 'backbone.snn.T8.convs.bbox_head_cls_convs_0_conv_3.weight' in state
    # a backbone-scope config refuses the full-scope checkpoint, and the other way round
    _, other = build('retinanet', 'backbone', converted_T=[8])
    with pytest.raises(ConversionStateError, match='another --scope'):
        other.load_state_dict(state)
    _, full = build('retinanet', 'full', converted_T=[8])
    full.load_state_dict(state)
    full.backbone.set_mode('snn', 8)
    for a, b in zip(head_outputs(full, x, 'full'), head_outputs(snn, x, 'full')):
        assert torch.equal(a, b)
    backbone_state = {k: v for k, v in state.items()
                      if not any(f'.{kind}.{part}' in k for kind in ('convs', 'neurons')
                                 for part in ('bbox_head_', 'neck_'))}
    with pytest.raises(ConversionStateError, match="scope='full'"):
        full.load_state_dict(backbone_state)


def test_unsupported_parts_fail_naming_the_module():
    cfg = copy.deepcopy(RETINA)
    cfg['neck'] = dict(type='PAFPN', in_channels=[16, 32, 64], out_channels=16, num_outs=5)
    cfg['backbone'] = dict(type='SpikingBackbone', backbone=cfg['backbone'], scope='full')
    cfg['detector_type'], cfg['type'] = cfg['type'], 'SpikingDetector'
    with pytest.raises(UnsupportedModuleError, match="'neck' of type PAFPN"):
        MODELS.build(cfg)
    from mmengine.config import Config
    det = Config.fromfile('configs/synth/faster-rcnn_r18n_fpn_8e_synth.py').model
    frcnn = dict(det, type='SpikingDetector', detector_type='FasterRCNN')
    frcnn['backbone'] = dict(type='SpikingBackbone', backbone=det.backbone, scope='full')
    bad = copy.deepcopy(frcnn)                        # an RPN of two convs is not converted
    bad['rpn_head']['num_convs'] = 2
    with pytest.raises(UnsupportedModuleError, match="'rpn_head.rpn_conv'.*num_convs=1"):
        MODELS.build(bad)
    bad = copy.deepcopy(frcnn)
    bad['roi_head']['bbox_head']['type'] = 'Shared4Conv1FCBBoxHead'
    with pytest.raises(UnsupportedModuleError, match="'roi_head.bbox_head' of type "
                                                     "Shared4Conv1FCBBoxHead"):
        MODELS.build(bad)
    frcnn['backbone']['scope'] = 'neck'               # the neck can spike
    model = MODELS.build(frcnn)
    assert model.backbone.graph.spiking_parts == ['backbone', 'neck']
    with pytest.raises(ValueError, match='scope must be one of'):
        MODELS.build(dict(frcnn, backbone=dict(frcnn['backbone'], scope='head')))
    # a scope beyond the backbone without SpikingDetector: a clear error, not a silent ANN
    plain = MODELS.build(dict(type='SpikingBackbone', backbone=RETINA['backbone'],
                              scope='full'))
    with pytest.raises(ConversionStateError, match='SpikingDetector'):
        plain(torch.rand(1, 3, 32, 32))


def test_signed_relu_neurons_at_every_relu_site_survive_a_checkpoint():
    """relu_neuron='signed' (beyond the seeds): every ReLU site of the full scope gets the
    signed neuron with negative slope 0 and no v(0) shift (it rounds with h = 1/2); the
    converted state reloads into a config that names the option with the same readout,
    and a config of IF neurons refuses it (and the other way round)."""
    from snn_det.neurons import SignedIFNeuron
    signed = dict(threshold='max', relu_neuron='signed')
    ann, snn = build('retinanet', 'full', T=8, conversion=signed)
    bb = snn.backbone
    x = torch.rand(1, 3, 64, 64)
    cfg = ConversionConfig.from_dict(signed)
    net = build_spiking_net(bb.graph, observe(bb.graph, [x]), 8, cfg)
    neurons = [net.neuron(s.name) for s in bb.graph.sites]
    assert all(isinstance(n, SignedIFNeuron) and n.negative_slope == 0.0 for n in neurons)
    assert all(float(n.v0.abs().max()) == 0.0 for n in neurons)
    bb.add_spiking_net(net)
    bb.set_mode('snn', 8)
    ref = head_outputs(snn, x, 'full')
    _, other = build('retinanet', 'full', T=8, converted_T=[8], conversion=signed)
    other.load_state_dict(snn.state_dict())
    other.backbone.set_mode('snn', 8)
    for a, b in zip(ref, head_outputs(other, x, 'full')):
        assert torch.equal(a, b)
    _, plain = build('retinanet', 'full', T=8, converted_T=[8])
    with pytest.raises(ConversionStateError, match="relu_neuron='signed', this config has "
                                                   "relu_neuron='if'"):
        plain.load_state_dict(snn.state_dict())
    _convert(plain, [x], 8)
    with pytest.raises(ConversionStateError, match="relu_neuron='if'"):
        other.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="relu_neuron must be one of"):
        ConversionConfig.from_dict(dict(relu_neuron='lif'))


# -- Faster R-CNN: spiking RPN and RoI head, two phases around the proposals -------------
def _samples(n, h, w):
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        scale_factor=(1.0, 1.0), batch_input_shape=(h, w)))
            for _ in range(n)]


def _ann_outputs(graph, x):
    """The graph's ANN outputs (cls_score, bbox_pred) and the ANN's rois they are for."""
    from snn_det.conversion.ops import AnnOps
    seen = {}

    def rec(kind, name, t, steps):
        if kind == 'rois':
            seen['rois'] = t
    with torch.no_grad():
        outs = graph.forward(x, AnnOps(graph, recorder=rec))
    return outs, seen['rois']


def test_faster_rcnn_full_scope_is_mmdets_own_predict_in_ann_mode():
    """The two-stage graph (FPN -> RPN -> proposals -> RoIAlign -> shared FCs) run as the
    ANN gives mmdet's own Faster R-CNN detections bit for bit, and every ReLU of the RPN
    and of the RoI head's shared FCs is an IF neuron."""
    ann, snn = build('faster_rcnn', 'full')
    g = snn.backbone.graph
    assert g.spiking_parts == ['backbone', 'neck', 'rpn_head', 'roi_head']
    names = [s.name for s in g.sites]
    assert [n for n in names if n.startswith('rpn_head.')] == \
        [f'rpn_head.rpn_conv.relu@{i}' for i in range(5)]
    assert [n for n in names if n.startswith('roi_head.')] == \
        ['roi_head.bbox_head.shared_fcs.0.relu', 'roi_head.bbox_head.shared_fcs.1.relu']
    assert g.barrier == g.segment_of('roi_head.bbox_head.shared_fcs.0.relu')
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        ref = ann.predict(x, _samples(2, 64, 96))
        got = snn.predict(x, _samples(2, 64, 96))
    for a, b in zip(ref, got):
        assert len(a.pred_instances) > 0
        for k in ('bboxes', 'scores', 'labels'):
            assert torch.equal(a.pred_instances[k], b.pred_instances[k]), k


def test_faster_rcnn_roi_head_outputs_approach_the_ann_as_T_grows():
    """On the same (the ANN's) proposals, the spiking RoI head's time-averaged fc_cls /
    fc_reg converge to the ANN's (rate coding, seed 001 Eq. 8); the first phase's spike
    trains kept in bits give the second phase bit for bit the same outputs."""
    from snn_det.models.spiking_backbone import spike_stash
    _, snn = build('faster_rcnn', 'full')
    graph = snn.backbone.graph
    x = torch.rand(2, 3, 64, 64)
    ref, rois = _ann_outputs(graph, x)
    errs = {}
    for T in (8, 128):
        net = _convert(snn, [x], T)
        with torch.no_grad():
            got = net.simulate(x, T, 16, rois=rois)
        errs[T] = sum(float((a - b).pow(2).sum()) for a, b in zip(ref, got)) / \
            sum(float(a.pow(2).sum()) for a in ref)
    assert errs[128] < 0.35 * errs[8], errs
    with torch.no_grad():
        plain = net.simulate(x, 16, 4)
        kept = net.simulate(x, 16, 4, stash=spike_stash())
    assert all(torch.equal(a, b) for a, b in zip(plain, kept))
    # without given rois the SNN decodes its own RPN readout into proposals
    assert graph.parts[-1].last_proposals is not None and plain[0].shape[0] == \
        sum(len(r) for r in graph.parts[-1].last_proposals)


def test_faster_rcnn_frontier_crosses_the_barrier_on_the_anns_rois():
    """Layer-by-layer calibration crosses the barrier: past it the frontier holds the
    ANN's rois with the backbone's spike trains (in bits), and every site's SNN / ANN
    values from the frontier equal runs from the image on those rois; LCP then lowers
    the RoI head's error."""
    _, snn = build('faster_rcnn', 'full')
    graph = snn.backbone.graph
    x = torch.rand(2, 3, 64, 64)
    ref, rois = _ann_outputs(graph, x)
    obs = observe(graph, [x])
    cfg = ConversionConfig.from_dict(dict(threshold='max', calib='lcp'))
    T, chunk = 6, 4
    net = build_spiking_net(graph, obs, T, cfg)
    f = Frontier(x)
    for site in graph.sites[::2] + graph.sites[-2:]:
        f.advance(graph, net, graph.segment_of(site.name), T, chunk)
        a = snn_site(net, f, site.name, T, chunk)
        b = snn_site(net, x, site.name, T, chunk, rois=rois)
        for k in ('site_in', 'site_out'):
            assert torch.equal(a[k], b[k]), (site.name, k)
        assert torch.equal(ann_site(graph, f, site.name)['site_out'],
                           ann_site(graph, x, site.name)['site_out'])
    at = Frontier(x)                         # at the barrier: the ANN's rois + spike trains
    at.advance(graph, net, graph.barrier, T, chunk)
    assert torch.equal(at.snn[0]['rois'], rois) and torch.equal(at.ann['rois'], rois)
    assert all(at._snn[0][f'c{i}'].is_spikes for i in range(4))
    errs = {}
    for calib in ((), ('bias',)):
        net = _convert(snn, [x], 8, calib)
        with torch.no_grad():
            got = net.simulate(x, 8, rois=rois)
        errs[calib] = sum(float((a - b).pow(2).sum()) for a, b in zip(ref, got))
    assert errs[('bias',)] < errs[()], errs


def test_faster_rcnn_spiking_predict_and_its_checkpoint():
    """mmdet's own predict on the fully spiking Faster R-CNN (its proposals from the
    spiking RPN); the converted state reloads into a config of the same scope and gives
    the same detections; ANN keys are unchanged."""
    _, snn = build('faster_rcnn', 'full', T=8)
    x = torch.rand(1, 3, 64, 64)
    _convert(snn, [x], 8, ('bias',))
    snn.backbone.set_mode('snn', 8)
    with torch.no_grad():
        res = snn.predict(x, _samples(1, 64, 64))
    assert res[0].pred_instances.bboxes.shape[1] == 4 and len(res[0].pred_instances) > 0
    state = snn.state_dict()
    assert 'roi_head.bbox_head.shared_fcs.0.weight' in state
    assert 'backbone.snn.T8.neurons.roi_head_bbox_head_shared_fcs_1_relu.threshold' in state
    assert 'backbone.snn.T8.convs.rpn_head_rpn_conv_4.weight' in state
    _, again = build('faster_rcnn', 'full', T=8, converted_T=[8])
    again.load_state_dict(state)
    again.backbone.set_mode('snn', 8)
    with torch.no_grad():
        res2 = again.predict(x, _samples(1, 64, 64))
    for k in ('bboxes', 'scores', 'labels'):
        assert torch.equal(res[0].pred_instances[k], res2[0].pred_instances[k])
    _, neck = build('faster_rcnn', 'neck', converted_T=[8])
    with pytest.raises(ConversionStateError, match='another --scope'):
        neck.load_state_dict(state)


FRCNN_TRAIN = dict(
    rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                           min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
             sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1,
                          add_gt_as_proposals=False),
             allowed_border=-1, pos_weight=-1, debug=False),
    rpn_proposal=dict(nms_pre=200, max_per_img=40, nms=dict(type='nms', iou_threshold=0.7),
                      min_bbox_size=0),
    rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                            min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
              sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                           add_gt_as_proposals=True),
              pos_weight=-1, debug=False))


def _gt_samples(n, h, w):
    from mmengine.structures import InstanceData
    samples = _samples(n, h, w)
    for s in samples:
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 6., 30., 40.], [20., 8., 60., 50.]]),
            labels=torch.tensor([0, 2]))
    return samples


def test_faster_rcnn_full_scope_stage_one_is_mmdets_loss_with_qc_sites():
    """Stage I (seed 003 Sec. V-A) on the fully spiking Faster R-CNN: without QC
    activations the loss is mmdet's own Faster R-CNN loss bit for bit (same proposal
    sampling); with them, every site of the scope (backbone, RPN conv per level, shared
    FCs) is its QC function g_{theta,T} (Eq. 12), so each threshold gets a gradient and
    the loss moves; a spiking net is refused."""
    FRCNN['train_cfg'] = FRCNN_TRAIN
    try:
        ann, snn = build('faster_rcnn', 'full')
        _, qc = build('faster_rcnn', 'full', act_cfg=dict(type='QCActivation', T=4, p=1.0))
    finally:
        FRCNN['train_cfg'] = None
    x = torch.rand(2, 3, 64, 64)
    losses = {}
    for name, model in (('ann', ann), ('snn', snn), ('qc', qc)):
        model.train()
        torch.manual_seed(0)
        losses[name] = model.loss(x, _gt_samples(2, 64, 64))
    for k, v in losses['ann'].items():
        got = losses['snn'][k]
        for a, b in zip(v if isinstance(v, list) else [v], got if isinstance(got, list) else [got]):
            assert torch.equal(a, b), k
    total = sum(sum(v) if isinstance(v, list) else v for v in losses['qc'].values())
    ref = sum(sum(v) if isinstance(v, list) else v for v in losses['ann'].values())
    assert not torch.equal(total, ref)
    total.backward()
    acts = qc.backbone.site_activations()
    assert len(acts) == len(qc.backbone.graph.sites)
    for site in ('rpn_head.rpn_conv.relu@0', 'roi_head.bbox_head.shared_fcs.1.relu',
                 qc.backbone.graph.sites[0].name):
        g = acts[site].threshold.grad
        assert g is not None and float(g.abs()) > 0, site
    # Stage I's QC routing ends with the loss: mmdet's predict path is the graph's again,
    # through the Spiking* subclasses' own methods (no method patched on the instances)
    from snn_det.models.spiking_detector import SpikingScopeDetector
    assert qc._stage_one is None and qc.rpn_head._stage_one is None
    assert qc.roi_head.bbox_head._stage_one is None
    assert type(qc).extract_feat is SpikingScopeDetector.extract_feat
    assert not {'forward', 'predict', 'extract_feat', 'loss'} & (
        set(vars(qc)) | set(vars(qc.rpn_head)) | set(vars(qc.roi_head.bbox_head)))
    assert type(qc).__name__ == 'SpikingFasterRCNN'
    snn.eval()
    _convert(snn, [x], 4)
    snn.backbone.set_mode('snn', 4)
    with pytest.raises(ConversionStateError, match='cannot be trained'):
        snn.loss(x, _gt_samples(2, 64, 64))


def test_faster_rcnn_phase_one_spike_trains_that_cannot_fit_are_refused(monkeypatch):
    """The spike trains kept between the two phases grow with T (not with the chunk): once
    the first chunk shows that the rest cannot fit, the run stops naming the fixes."""
    import snn_det.utils.memory as memory
    from snn_det.conversion.errors import InsufficientMemoryError
    from snn_det.models.spiking_backbone import spike_stash
    _, snn = build('faster_rcnn', 'full')
    x = torch.rand(1, 3, 64, 64)
    net = _convert(snn, [x], 4)
    stash = spike_stash()
    with torch.no_grad():
        net.simulate(x, 4, 2, stash=stash)
    per_chunk = stash.cache.peak_ram_bytes / 2           # two chunks of 2 steps were kept
    real = memory.available_bytes
    monkeypatch.setattr(memory, 'available_bytes',
                        lambda device=None: int(50 * per_chunk) if device is None else real(device))
    with torch.no_grad():
        net.simulate(x, 100, 2, stash=spike_stash())      # 49 more chunks fit
        with pytest.raises(InsufficientMemoryError, match='two-stage full scope keeps') as e:
            net.simulate(x, 1000, 2, stash=spike_stash())
    assert 'T=1000' in str(e.value) and 'batch_size' in str(e.value)


def test_faster_rcnn_in_channels_last_layout_reads_its_rois_from_the_right_memory():
    """mmcv's RoIAlign reads any input as NCHW memory: in channels-last calibration the
    RoI head's features are made contiguous first, so calibrating channels last gives the
    default layout's network up to float rounding (a wrong read moved the RoI head's
    biases by ~1); a channels-last simulation hands MMDetection's modules contiguous
    readouts."""
    _, snn = build('faster_rcnn', 'full')
    graph = snn.backbone.graph
    x = torch.rand(2, 3, 64, 64)
    obs = observe(graph, [x])
    states = []
    for cl in (False, True):
        cfg = ConversionConfig.from_dict(dict(threshold='max', calib='lcp', channels_last=cl))
        net = build_spiking_net(graph, obs, 6, cfg)
        calibrate(graph, net, [x], cfg, 4, progress=False)
        states.append(net.state_dict())
    for k in states[0]:
        assert torch.allclose(states[0][k], states[1][k], rtol=1e-4, atol=1e-5), k
    _, det = build('faster_rcnn', 'backbone', T=4, channels_last=True)
    _convert(det, [x], 4)
    det.backbone.set_mode('snn', 4)
    with torch.no_grad():
        outs = det.backbone(x.contiguous(memory_format=torch.channels_last))
    assert all(o.is_contiguous() for o in outs)
