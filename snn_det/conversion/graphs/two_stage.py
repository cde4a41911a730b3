"""Call graph of a two-stage detector's FPN, ``RPNHead`` and RoI head (issue 13).

A two-stage detector is causal in two phases.  The RPN's proposals exist only
once its predictions have been read out (time-averaged over all T steps) and
decoded with NMS; the RoI head's fully connected layers then read features
RoIAlign-ed at those fixed proposals.  So the graph has a *barrier* before its
RoI segments:

1. phase 1 (segments before the barrier): the backbone's spike trains go
   through FPN (linear) into the RPN's ``rpn_conv`` + ReLU, one IF neuron per
   FPN level (``rpn_head.rpn_conv.relu@<level>``), and its ``rpn_cls`` /
   ``rpn_reg`` convolutions; their time averages are the RPN's readout;
2. the barrier: mmdet's own ``RPNHead.predict_by_feat`` turns the readout into
   proposals (NMS, not a neural operation), as ``rois`` (``bbox2roi``);
3. phase 2 (from the barrier): the *same* backbone spike trains (kept from
   phase 1, not simulated again) go through FPN once more; mmdet's own RoI
   extractor (RoIAlign: bilinear sampling and averaging, linear) samples each
   step's FPN currents at the fixed ``rois``; the shared FCs (``Linear`` + ReLU)
   are IF neurons (``roi_head.bbox_head.shared_fcs.<k>.relu``), and ``fc_cls`` /
   ``fc_reg`` are read out as time averages for the head's ``predict_by_feat``.

Time folding: a time chunk of K steps holds ``[K*B, C, H, W]`` feature maps, so
the rois are repeated K times with the batch index of step k shifted by ``k*B``:
the RoI features are ``[K*R, C, 7, 7]``, R proposals as the batch.  A fully
connected layer is a 1x1 convolution on ``[N, C, 1, 1]`` (:class:`LinearAs1x1`),
so folding, thresholds and every calibration treat it as any other unit.

Calibration aligns the SNN's RoI head with the ANN's on the same RoIs: the
ANN's proposals of each calibration batch (a frontier carries them).  At test
time the SNN uses its own RPN's proposals: nothing of the detector is analog
except RoIAlign's sampling (linear) and the proposal decoding (NMS).
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import UnsupportedModuleError
from .base import ConvUnit, check_conv
from .necks import FPNGraph
from .parts import PartGraph, _check_type


class LinearAs1x1(nn.Module):
    """An ``nn.Linear`` seen as a 1x1 convolution on ``[N, C, 1, 1]`` (its weights are the
    linear layer's own: ``weight`` is a view of them, nothing is copied)."""

    kernel_size, stride, padding, dilation, groups = (1, 1), (1, 1), (0, 0), (1, 1), 1
    padding_mode = 'zeros'

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.__dict__['linear'] = linear          # not a child: keys stay the head's
        self.in_channels, self.out_channels = linear.in_features, linear.out_features

    @property
    def weight(self) -> Tensor:
        return self.linear.weight.reshape(self.out_channels, self.in_channels, 1, 1)

    @property
    def bias(self) -> Optional[Tensor]:
        return self.linear.bias

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1)).reshape(x.shape[0], -1, 1, 1)


def _check_linear(path: str, module) -> nn.Linear:
    if type(module) is not nn.Linear:
        raise UnsupportedModuleError(path, module, 'expected nn.Linear')
    return module


class TwoStageHeadsGraph(PartGraph):
    """FPN + ``RPNHead`` + ``StandardRoIHead`` (``SingleRoIExtractor`` and a
    ``ConvFCBBoxHead`` of shared FCs, e.g. ``Shared2FCBBoxHead``).

    Reads the backbone's ``c0 ..``; before the barrier it writes the RPN's
    ``rpn_cls<l>`` / ``rpn_reg<l>`` (read out at the barrier) next to the ``c``s,
    after it reads the ``c``s and ``rois``; outputs ``(cls_score, bbox_pred)``.
    """

    kind = 'head'
    #: the detector's parts this graph makes spiking
    covers = ('neck', 'rpn_head', 'roi_head')

    def __init__(self, neck, rpn_head, roi_head, prefix: str = 'roi_head'):
        from mmdet.models.dense_heads import RPNHead
        from mmdet.models.roi_heads import StandardRoIHead
        from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
        from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
        super().__init__(roi_head, prefix)
        _check_type(rpn_head, RPNHead, 'rpn_head')
        _check_type(roi_head, StandardRoIHead, prefix)
        if getattr(roi_head, 'with_mask', False) or getattr(roi_head, 'with_shared_head', False):
            raise UnsupportedModuleError(prefix, roi_head,
                                         'mask heads and shared heads are not converted')
        _check_type(roi_head.bbox_roi_extractor, SingleRoIExtractor,
                    f'{prefix}.bbox_roi_extractor')
        head = roi_head.bbox_head
        if not isinstance(head, ConvFCBBoxHead) or head.num_shared_convs or \
                head.num_cls_convs or head.num_reg_convs or head.num_cls_fcs or \
                head.num_reg_fcs or head.with_avg_pool or not head.num_shared_fcs:
            raise UnsupportedModuleError(
                f'{prefix}.bbox_head', head, 'only shared fully connected layers (as '
                'Shared2FCBBoxHead) are converted: no convolutions, branch FCs or avg-pool')
        if not (head.with_cls and head.with_reg):
            raise UnsupportedModuleError(f'{prefix}.bbox_head', head,
                                         'needs both fc_cls and fc_reg')
        self.rpn_head, self.roi_head = rpn_head, roi_head
        self.fpn = FPNGraph(neck, 'neck')
        self.units.update(self.fpn.units)
        self.inputs = self.fpn.inputs
        L = rpn_head.prior_generator.num_levels
        if L != len(self.fpn.outputs):
            raise UnsupportedModuleError('rpn_head', rpn_head, f'{L} levels, FPN gives '
                                         f'{len(self.fpn.outputs)}')
        self.levels = L
        self.rpn_names = tuple([f'rpn_cls{i}' for i in range(L)] +
                               [f'rpn_reg{i}' for i in range(L)])
        self.outputs = ('cls_score', 'bbox_pred')
        #: assumed image metas for the proposals of a batch without them (calibration)
        self.img_metas: Optional[List[dict]] = None
        #: the proposals (mmdet ``InstanceData`` per image) computed at the last barrier
        self.last_proposals = None
        # phase 1: the RPN tower (one conv + ReLU per level) and its predictions
        self.start_segment()
        if not isinstance(rpn_head.rpn_conv, nn.Conv2d) or getattr(rpn_head, 'num_convs', 1) != 1:
            raise UnsupportedModuleError('rpn_head.rpn_conv', rpn_head.rpn_conv,
                                         'only num_convs=1 (one nn.Conv2d + ReLU) is converted')
        self.rpn = []
        for lvl in range(L):
            unit = self._unit('rpn_head.rpn_conv', rpn_head.rpn_conv, lvl)
            site = f'rpn_head.rpn_conv.relu@{lvl}'
            self.add_site(site, rpn_head.feat_channels, unit, 'rpn_head')
            self.rpn.append((unit, site, self._unit('rpn_head.rpn_cls', rpn_head.rpn_cls, lvl),
                             self._unit('rpn_head.rpn_reg', rpn_head.rpn_reg, lvl)))
        # phase 2 (the barrier is the start of its first segment): shared FCs + predictions
        self.barrier = 1
        self.fcs = []
        for k, fc in enumerate(head.shared_fcs):
            self.start_segment()
            rel = f'{prefix}.bbox_head.shared_fcs.{k}'
            unit = self._unit(rel, fc, linear=True)
            site = f'{rel}.relu'
            self.add_site(site, fc.out_features, unit, f'{prefix}.bbox_head')
            self.fcs.append((unit, site))
        self.pred = (self._unit(f'{prefix}.bbox_head.fc_cls', head.fc_cls, linear=True),
                     self._unit(f'{prefix}.bbox_head.fc_reg', head.fc_reg, linear=True))

    # -- building ----------------------------------------------------------
    def _unit(self, rel: str, module, level: Optional[int] = None, linear: bool = False) -> str:
        path = rel if level is None else f'{rel}@{level}'
        conv = LinearAs1x1(_check_linear(rel, module)) if linear else check_conv(rel, module)
        self.units[path] = ConvUnit(path, conv, None)
        return path

    # -- the barrier ---------------------------------------------------------
    def _metas(self, batch: int, feat: Tensor) -> List[dict]:
        metas = self.img_metas
        if metas is not None and len(metas) == batch:
            return metas
        # no metas (calibration batches): the padded input, from the first level's stride
        stride = self.rpn_head.prior_generator.strides[0]
        shape = (int(feat.shape[-2] * stride[1]), int(feat.shape[-1] * stride[0]))
        return [dict(img_shape=shape, pad_shape=shape)] * batch

    @torch.no_grad()
    def proposals(self, readout: Dict[str, Tensor]) -> Tensor:
        """The barrier: the RPN's (time-averaged) predictions -> proposals (mmdet's
        ``predict_by_feat``, NMS included) -> ``rois`` ``[R, 5]`` (``bbox2roi``)."""
        from mmdet.structures.bbox import bbox2roi
        L = self.levels
        cls = [readout[f'rpn_cls{i}'] for i in range(L)]
        reg = [readout[f'rpn_reg{i}'] for i in range(L)]
        metas = self._metas(cls[0].shape[0], cls[0])
        results = self.rpn_head.predict_by_feat(cls, reg, batch_img_metas=metas, rescale=False)
        self.last_proposals = results
        return bbox2roi([r.bboxes for r in results])

    # -- running -------------------------------------------------------------
    def run_segment(self, i: int, state: dict, ops) -> dict:
        if i == 0:
            p = self.fpn.run_segment(0, {n: state[n] for n in self.inputs}, ops)
            new = {n: state[n] for n in self.inputs}          # kept for phase 2
            for lvl, (unit, site, cls, reg) in enumerate(self.rpn):
                x = ops.act(site, ops.conv(unit, p.pop(f'p{lvl}')))
                new[f'rpn_cls{lvl}'] = ops.conv(cls, x)
                new[f'rpn_reg{lvl}'] = ops.conv(reg, x)
            return new
        if i == self.barrier:
            x = self.roi_features(state, ops)
        else:
            x = state['x']
        unit, site = self.fcs[i - 1]
        x = ops.act(site, ops.conv(unit, x))
        if i < len(self.fcs):
            return {'x': x}
        return {'cls_score': ops.conv(self.pred[0], x), 'bbox_pred': ops.conv(self.pred[1], x)}

    def roi_features(self, state: dict, ops) -> Tensor:
        """RoIAlign of each step's FPN currents at the fixed ``rois``: ``[K*R, C*7*7, 1, 1]``."""
        rois = state['rois']
        p = self.fpn.run_segment(0, {n: state[n] for n in self.inputs}, ops)
        extractor = self.roi_head.bbox_roi_extractor
        # mmcv's RoIAlign reads its input as NCHW memory whatever its strides: a
        # channels-last map (calibration or simulation in that layout) is made contiguous
        feats = [p[f'p{i}'].contiguous() for i in range(extractor.num_inputs)]
        steps = ops.steps if getattr(ops, 'time_folded', False) else 1
        if steps > 1:
            batch = feats[0].shape[0] // steps
            shift = torch.arange(steps, dtype=rois.dtype, device=rois.device) * batch
            rois = rois.repeat(steps, 1)
            rois[:, 0] += shift.repeat_interleave(len(state['rois']))
        x = extractor(tuple(feats), rois)
        return x.flatten(1).reshape(x.shape[0], -1, 1, 1)

    pred_rpn = 'rpn_head.rpn_cls, rpn_head.rpn_reg'
    pred_roi = 'roi_head.bbox_head.fc_cls, roi_head.bbox_head.fc_reg'

    def format_outputs(self, outs: Sequence):
        return tuple(o.flatten(1) for o in outs)
