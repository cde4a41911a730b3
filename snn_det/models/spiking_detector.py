"""``SpikingDetector``: a detector whose neck (and head) spike too (issue 13).

Config (what ``tools/convert.py --scope full`` writes)::

    model = dict(
        type='SpikingDetector',
        detector_type='RetinaNet',          # the detector's own type
        backbone=dict(type='SpikingBackbone', scope='full', backbone=..., ...),
        neck=..., bbox_head=..., ...)       # unchanged

It builds the detector of ``detector_type`` from the remaining keys (so the
model, its state-dict keys and every mmdet method are the detector's own),
makes it and its heads instances of ``Spiking<Class>`` subclasses (the mixins
below + the detector's own class) and attaches the neck and head to its
:class:`SpikingBackbone`, whose graph then
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
from mmdet.registry import MODELS

from ..conversion.errors import ConversionStateError
from ..conversion.ops import AnnOps
from .spiking_backbone import HeadOutputs, SpikingBackbone, TwoStageOutputs

_SUBCLASSES = {}


def _specialise(obj, mixin: type) -> None:
    """Make ``obj`` an instance of ``mixin`` + its own class (``Spiking<Class>``), so the
    mixin's methods override the class's and call them with ``super()``; the module,
    its parameters and state-dict keys stay the same object's."""
    base = type(obj)
    if isinstance(obj, mixin):
        return
    cls = _SUBCLASSES.get((mixin, base))
    if cls is None:
        cls = type(f'Spiking{base.__name__}', (mixin, base),
                   dict(__module__=__name__, __doc__=f'{base.__name__} with '
                        f'{mixin.__name__} (see {__name__}).'))
        _SUBCLASSES[mixin, base] = cls
    obj.__class__ = cls


class SpikingScopeDetector:
    """A detector whose neck (and head) are part of its backbone's spiking graph: its
    features are the spiking scope's readout."""

    def extract_feat(self, batch_inputs):
        stage_one = getattr(self, '_stage_one', None)
        if stage_one is not None:         # Stage I (QC fine-tuning) of a two-stage scope
            bb, acts = self.backbone, stage_one
            return self.neck(bb.backbone_graph.forward(batch_inputs,
                                                       AnnOps(bb.backbone_graph, acts)))
        return self.backbone(batch_inputs)


class SpikingDenseHead:
    """A one-stage head of a ``full`` scope: its prediction maps are the spiking net's
    time-averaged readout, handed to it as :class:`HeadOutputs`."""

    def forward(self, x):
        if isinstance(x, HeadOutputs):        # already computed by the spiking scope
            return tuple(x)
        return super().forward(x)


class SpikingTwoStageDetector(SpikingScopeDetector):
    """Faster R-CNN with a ``full`` spiking scope: the image metas reach the proposal
    step between the two phases; Stage I trains with every site's QC activation."""

    def _with_metas(self, method, batch_inputs, batch_data_samples, *args, **kwargs):
        part = self.backbone.graph.parts[-1]
        part.img_metas = [s.metainfo for s in batch_data_samples]
        try:
            return method(batch_inputs, batch_data_samples, *args, **kwargs)
        finally:
            part.img_metas = None

    def predict(self, batch_inputs, batch_data_samples, *args, **kwargs):
        return self._with_metas(super().predict, batch_inputs, batch_data_samples, *args,
                                **kwargs)

    def _forward(self, batch_inputs, batch_data_samples=None, *args, **kwargs):
        return self._with_metas(super()._forward, batch_inputs, batch_data_samples, *args,
                                **kwargs)

    def loss(self, batch_inputs, batch_data_samples):
        """Stage I of a two-stage full scope: mmdet's own ``TwoStageDetector.loss`` with
        every site of the scope applying its QC activation (see module docstring)."""
        bb = self.backbone
        if bb.mode == 'snn':
            raise ConversionStateError(
                "a spiking net cannot be trained: set_mode('ann') trains the (QC-)ANN")
        acts = bb.site_activations()
        ops = (bb.graph.parts[-1], AnnOps(bb.graph, acts))
        self._stage_one = acts
        self.rpn_head._stage_one = self.roi_head.bbox_head._stage_one = ops
        try:
            return super().loss(batch_inputs, batch_data_samples)
        finally:
            self._stage_one = None
            self.rpn_head._stage_one = self.roi_head.bbox_head._stage_one = None


class SpikingRPNHead:
    """The RPN of a two-stage ``full`` scope: its proposals come from the spiking RPN's
    readout; in Stage I each level's ``rpn_conv`` ReLU is the site
    ``rpn_head.rpn_conv.relu@<level>`` (its QC activation)."""

    _stage_one = None

    def predict(self, x, batch_data_samples, rescale: bool = False):
        if isinstance(x, TwoStageOutputs):    # the spiking RPN's proposals, already decoded
            return x.proposals
        return super().predict(x, batch_data_samples, rescale=rescale)

    def forward(self, x):
        if self._stage_one is None:
            return super().forward(x)
        part, ops = self._stage_one
        cls_scores, bbox_preds = [], []
        for feat, (unit, site, cls, reg) in zip(x, part.rpn):
            h = ops.act(site, ops.conv(unit, feat))
            cls_scores.append(ops.conv(cls, h))
            bbox_preds.append(ops.conv(reg, h))
        return cls_scores, bbox_preds


class SpikingRoIHead:
    """The RoI head of a two-stage ``full`` scope: the spiking RoI head's readout for
    the proposals replaces the box head's forward."""

    def _bbox_forward(self, x, rois):
        if isinstance(x, TwoStageOutputs):    # the spiking RoI head's readout for these rois
            cls_score, bbox_pred = x
            if cls_score.shape[0] != rois.shape[0]:
                raise RuntimeError(f'{rois.shape[0]} rois, the spiking RoI head read out '
                                   f'{cls_score.shape[0]}')
            return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=None)
        return super()._bbox_forward(x, rois)


class SpikingBBoxHead:
    """``ConvFCBBoxHead`` in Stage I of a two-stage ``full`` scope: each shared FC's ReLU
    is the site ``roi_head.bbox_head.shared_fcs.<k>.relu`` (its QC activation)."""

    _stage_one = None

    def forward(self, x):
        if self._stage_one is None:
            return super().forward(x)
        part, ops = self._stage_one
        h = x.flatten(1).reshape(x.shape[0], -1, 1, 1)
        for unit, site in part.fcs:
            h = ops.act(site, ops.conv(unit, h))
        return tuple(ops.conv(p, h).flatten(1) for p in part.pred)


def attach_scope(model):
    """Make ``model.backbone``'s scope cover the neck (and head) of ``model``: the
    detector and its heads become their ``Spiking*`` subclasses above."""
    bb = model.backbone
    if not isinstance(bb, SpikingBackbone):
        raise TypeError(f'SpikingDetector needs a SpikingBackbone, got {type(bb).__name__}')
    if bb.scope == 'backbone':
        return model
    two_stage = getattr(model, 'roi_head', None) is not None
    if two_stage and bb.scope == 'full':
        bb.attach(getattr(model, 'neck', None), rpn_head=model.rpn_head,
                  roi_head=model.roi_head)
        _specialise(model, SpikingTwoStageDetector)
        _specialise(model.rpn_head, SpikingRPNHead)
        _specialise(model.roi_head, SpikingRoIHead)
        _specialise(model.roi_head.bbox_head, SpikingBBoxHead)
        return model
    bb.attach(getattr(model, 'neck', None), getattr(model, 'bbox_head', None))
    _specialise(model, SpikingScopeDetector)
    if bb.scope == 'full':
        _specialise(model.bbox_head, SpikingDenseHead)
    return model


@MODELS.register_module()
def SpikingDetector(detector_type: str, **kwargs):
    """Build ``detector_type`` from ``kwargs`` and attach its spiking scope."""
    model = MODELS.build(dict(type=detector_type, **kwargs))
    return attach_scope(model)
