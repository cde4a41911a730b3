"""``SpikingDetector``: a detector whose neck (and head) spike too (issue 13).

Config (what ``tools/convert.py --scope full`` writes)::

    model = dict(
        type='SpikingDetector',
        detector_type='RetinaNet',          # the detector's own type
        backbone=dict(type='SpikingBackbone', scope='full', backbone=..., ...),
        neck=..., bbox_head=..., ...)       # unchanged

It builds the detector of ``detector_type`` from the remaining keys (so the
model, its state-dict keys and every mmdet method are the detector's own) and
attaches the neck and head to its :class:`SpikingBackbone`, whose graph then
runs backbone -> neck (-> head up to the prediction convolutions) as one
spiking network.  ``extract_feat`` returns the spiking scope's readout; with
``scope='full'`` the head's ``forward`` returns the time-averaged prediction
maps it is handed, so mmdet's ``predict_by_feat`` / ``loss_by_feat`` run
unchanged on them.

Two-stage detectors (Faster R-CNN): ``scope='neck'`` runs the RPN and RoI heads on
the spiking neck's rates; ``'full'`` makes the RPN and the RoI head's shared FCs
spiking too, simulated in two phases around the proposals
(:mod:`~snn_det.conversion.graphs.two_stage`): ``predict`` hands the image metas to
the proposal step, the RPN head returns the proposals of the spiking RPN's readout
and the RoI head the time-averaged ``fc_cls`` / ``fc_reg`` for them, to mmdet's own
``predict_by_feat``.  Training such a scope (Stage I, seed 003 Sec. V-A) is mmdet's own
``TwoStageDetector.loss`` on the QC-ANN: every site of the scope (backbone, the RPN's
``rpn_conv`` ReLU per level, the shared FCs' ReLUs) applies its QC activation, the RPN
trains on its anchors and the RoI head on mmdet's sampled proposals, as the ANN does
(proposal sampling is not a neural operation); the graph's two-phase run is only for
inference.  A spiking net cannot be trained (``mode='snn'`` is refused).
"""
import contextlib
import types

from mmdet.registry import MODELS

from ..conversion.errors import ConversionStateError
from ..conversion.ops import AnnOps
from .spiking_backbone import HeadOutputs, SpikingBackbone, TwoStageOutputs


def _extract_feat(self, batch_inputs):
    """The spiking scope's readout (its neck is part of the backbone's graph)."""
    return self.backbone(batch_inputs)


def _head_forward(self, x):
    if isinstance(x, HeadOutputs):        # already computed by the spiking scope
        return tuple(x)
    return type(self).forward(self, x)


def _with_metas(method: str):
    """mmdet's own ``predict`` / ``_forward``, with the image metas given to the barrier's
    proposal step (clipping to each image's shape, as mmdet's RPN does)."""
    def call(self, batch_inputs, batch_data_samples, *args, **kwargs):
        part = self.backbone.graph.parts[-1]
        part.img_metas = [s.metainfo for s in batch_data_samples]
        try:
            return getattr(type(self), method)(self, batch_inputs, batch_data_samples, *args,
                                               **kwargs)
        finally:
            part.img_metas = None
    call.__name__ = method
    return call


def _rpn_predict(self, x, batch_data_samples, rescale: bool = False):
    if isinstance(x, TwoStageOutputs):    # the spiking RPN's proposals, already decoded
        return x.proposals
    return type(self).predict(self, x, batch_data_samples, rescale=rescale)


def _bbox_forward(self, x, rois):
    if isinstance(x, TwoStageOutputs):    # the spiking RoI head's readout for these rois
        cls_score, bbox_pred = x
        if cls_score.shape[0] != rois.shape[0]:
            raise RuntimeError(f'{rois.shape[0]} rois, the spiking RoI head read out '
                               f'{cls_score.shape[0]}')
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=None)
    return type(self)._bbox_forward(self, x, rois)


def _qc_rpn_forward(part, ops):
    """``RPNHead.forward`` with each level's ``rpn_conv`` ReLU the site
    ``rpn_head.rpn_conv.relu@<level>`` of ``ops`` (its QC activation in Stage I)."""
    def forward(self, x):
        cls_scores, bbox_preds = [], []
        for feat, (unit, site, cls, reg) in zip(x, part.rpn):
            h = ops.act(site, ops.conv(unit, feat))
            cls_scores.append(ops.conv(cls, h))
            bbox_preds.append(ops.conv(reg, h))
        return cls_scores, bbox_preds
    return forward


def _qc_bbox_forward(part, ops):
    """``ConvFCBBoxHead.forward`` of shared FCs, each ReLU the site
    ``roi_head.bbox_head.shared_fcs.<k>.relu`` of ``ops``."""
    def forward(self, x):
        h = x.flatten(1).reshape(x.shape[0], -1, 1, 1)
        for unit, site in part.fcs:
            h = ops.act(site, ops.conv(unit, h))
        return tuple(ops.conv(p, h).flatten(1) for p in part.pred)
    return forward


@contextlib.contextmanager
def _patched(obj, **methods):
    """Bind ``methods`` to ``obj`` for the block; its own attributes come back after."""
    before = {name: obj.__dict__[name] for name in methods if name in obj.__dict__}
    for name, fn in methods.items():
        setattr(obj, name, types.MethodType(fn, obj))
    try:
        yield
    finally:
        for name in methods:
            delattr(obj, name)
        obj.__dict__.update(before)


def _two_stage_loss(self, batch_inputs, batch_data_samples):
    """Stage I of a two-stage full scope: mmdet's own ``TwoStageDetector.loss`` with
    every site of the scope applying its QC activation (see module docstring)."""
    bb = self.backbone
    if bb.mode == 'snn':
        raise ConversionStateError(
            "a spiking net cannot be trained: set_mode('ann') trains the (QC-)ANN")
    graph, part = bb.graph, bb.graph.parts[-1]
    acts = bb.site_activations()
    ops = AnnOps(graph, acts)

    def extract_feat(det, x):
        feats = bb.backbone_graph.forward(x, AnnOps(bb.backbone_graph, acts))
        return det.neck(feats)

    with _patched(self, extract_feat=extract_feat), \
            _patched(self.rpn_head, forward=_qc_rpn_forward(part, ops)), \
            _patched(self.roi_head.bbox_head, forward=_qc_bbox_forward(part, ops)):
        return type(self).loss(self, batch_inputs, batch_data_samples)


def attach_scope(model):
    """Make ``model.backbone``'s scope cover the neck (and head) of ``model``."""
    bb = model.backbone
    if not isinstance(bb, SpikingBackbone):
        raise TypeError(f'SpikingDetector needs a SpikingBackbone, got {type(bb).__name__}')
    if bb.scope == 'backbone':
        return model
    two_stage = getattr(model, 'roi_head', None) is not None
    if two_stage and bb.scope == 'full':
        bb.attach(getattr(model, 'neck', None), rpn_head=model.rpn_head,
                  roi_head=model.roi_head)
    else:
        bb.attach(getattr(model, 'neck', None), getattr(model, 'bbox_head', None))
    model.extract_feat = types.MethodType(_extract_feat, model)
    if bb.scope == 'full' and two_stage:
        model.predict = types.MethodType(_with_metas('predict'), model)
        model._forward = types.MethodType(_with_metas('_forward'), model)
        model.loss = types.MethodType(_two_stage_loss, model)
        model.rpn_head.predict = types.MethodType(_rpn_predict, model.rpn_head)
        model.roi_head._bbox_forward = types.MethodType(_bbox_forward, model.roi_head)
    elif bb.scope == 'full':
        model.bbox_head.forward = types.MethodType(_head_forward, model.bbox_head)
    return model


@MODELS.register_module()
def SpikingDetector(detector_type: str, **kwargs):
    """Build ``detector_type`` from ``kwargs`` and attach its spiking scope."""
    model = MODELS.build(dict(type=detector_type, **kwargs))
    return attach_scope(model)
