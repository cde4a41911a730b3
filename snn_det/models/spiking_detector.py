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

Two-stage detectors: ``scope='neck'`` works (the RPN and RoI heads run on the
spiking neck's rates); ``'full'`` is refused.  The RoI head's FCs read features
RoIAlign-ed at proposals that exist only after the RPN's time-averaged output,
so a spiking RoI head needs a second simulation of the whole scope with fixed
proposals; that is not built, and nothing is left silently analog instead.
"""
import types

from mmdet.registry import MODELS

from ..conversion.errors import UnsupportedModuleError
from .spiking_backbone import HeadOutputs, SpikingBackbone


def _extract_feat(self, batch_inputs):
    """The spiking scope's readout (its neck is part of the backbone's graph)."""
    return self.backbone(batch_inputs)


def _head_forward(self, x):
    if isinstance(x, HeadOutputs):        # already computed by the spiking scope
        return tuple(x)
    return type(self).forward(self, x)


def attach_scope(model):
    """Make ``model.backbone``'s scope cover the neck (and head) of ``model``."""
    bb = model.backbone
    if not isinstance(bb, SpikingBackbone):
        raise TypeError(f'SpikingDetector needs a SpikingBackbone, got {type(bb).__name__}')
    if bb.scope == 'backbone':
        return model
    if bb.scope == 'full':
        if getattr(model, 'roi_head', None) is not None or not hasattr(model, 'bbox_head'):
            raise UnsupportedModuleError(
                'roi_head', getattr(model, 'roi_head', model),
                "scope='full' is for single-stage detectors: a two-stage RoI head reads "
                "proposals known only after the RPN's readout; use --scope neck")
    bb.attach(getattr(model, 'neck', None), getattr(model, 'bbox_head', None))
    model.extract_feat = types.MethodType(_extract_feat, model)
    if bb.scope == 'full':
        model.bbox_head.forward = types.MethodType(_head_forward, model.bbox_head)
    return model


@MODELS.register_module()
def SpikingDetector(detector_type: str, **kwargs):
    """Build ``detector_type`` from ``kwargs`` and attach its spiking scope."""
    model = MODELS.build(dict(type=detector_type, **kwargs))
    return attach_scope(model)
