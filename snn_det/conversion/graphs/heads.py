"""Call graphs of mmdet's ``RetinaHead`` and ``YOLOV3Head`` up to their predictions.

The prediction convolutions (``retina_cls`` / ``retina_reg``, ``convs_pred``)
have no activation: they run on the last neurons' spike trains step by step and
their outputs are time-averaged (the readout), then handed to the head's own
``predict_by_feat`` / ``loss_by_feat`` unchanged.

``RetinaHead`` applies one tower (``stacked_convs`` ConvModule + ReLU per
branch) to every FPN level: each (layer, level) call is its own unit and IF
neuron (``bbox_head.cls_convs.0.activate@2``).  A segment is one tower depth
across all levels and both branches.  ``YOLOV3Head``: per level a 3x3
ConvModule with Leaky-ReLU (signed neuron) and a 1x1 prediction convolution.
"""
from typing import Sequence

from ...registry import GRAPHS
from .parts import PartGraph, _check_type


@GRAPHS.register_module(name='RetinaHead')
class RetinaHeadGraph(PartGraph):
    """Reads ``p0 .. p{L-1}``, writes ``cls0.., reg0..``; output ``(cls_scores, bbox_preds)``."""

    kind = 'head'

    def __init__(self, head, prefix: str = 'bbox_head'):
        from mmdet.models.dense_heads import RetinaHead
        super().__init__(head, prefix)
        _check_type(head, RetinaHead, prefix)
        L = head.prior_generator.num_levels
        self.levels = L
        self.inputs = tuple(f'p{i}' for i in range(L))
        self.outputs = tuple([f'cls{i}' for i in range(L)] + [f'reg{i}' for i in range(L)])
        self.tower = []
        for k in range(head.stacked_convs):
            self.start_segment()
            depth = []
            for lvl in range(L):
                c = self.add_conv_module(f'cls_convs.{k}', head.cls_convs[k], lvl,
                                         stage=f'{prefix}.cls_convs')
                r = self.add_conv_module(f'reg_convs.{k}', head.reg_convs[k], lvl,
                                         stage=f'{prefix}.reg_convs')
                depth.append((c, r))
            self.tower.append(depth)
        self.start_segment()          # the prediction convolutions (no neuron)
        self.pred = [(self.add_conv('retina_cls', head.retina_cls, lvl),
                      self.add_conv('retina_reg', head.retina_reg, lvl)) for lvl in range(L)]

    def run_segment(self, i: int, state: dict, ops) -> dict:
        new = dict(state)
        if i < len(self.tower):
            for lvl, (c, r) in enumerate(self.tower[i]):
                if i == 0:
                    x = new.pop(f'p{lvl}')
                    cls_in = reg_in = x
                else:
                    cls_in, reg_in = new[f'cls{lvl}'], new[f'reg{lvl}']
                new[f'cls{lvl}'] = self.conv_module(ops, *c, cls_in)
                new[f'reg{lvl}'] = self.conv_module(ops, *r, reg_in)
            return new
        for lvl, (c, r) in enumerate(self.pred):
            cls_in = new[f'cls{lvl}'] if len(self.tower) else new[f'p{lvl}']
            reg_in = new[f'reg{lvl}'] if len(self.tower) else new.pop(f'p{lvl}')
            new[f'cls{lvl}'] = ops.conv(c, cls_in)
            new[f'reg{lvl}'] = ops.conv(r, reg_in)
        return {k: v for k, v in new.items() if k in self.outputs}

    def format_outputs(self, outs: Sequence):
        L = self.levels
        return list(outs[:L]), list(outs[L:])


@GRAPHS.register_module(name='YOLOV3Head')
class YOLOV3HeadGraph(PartGraph):
    """Reads ``p0 .. p{L-1}``, writes ``pred0..``; output ``(pred_maps,)``."""

    kind = 'head'

    def __init__(self, head, prefix: str = 'bbox_head'):
        from mmdet.models.dense_heads import YOLOV3Head
        super().__init__(head, prefix)
        _check_type(head, YOLOV3Head, prefix)
        L = head.num_levels
        self.levels = L
        self.inputs = tuple(f'p{i}' for i in range(L))
        self.outputs = tuple(f'pred{i}' for i in range(L))
        self.start_segment()
        self.bridge = [self.add_conv_module(f'convs_bridge.{i}', head.convs_bridge[i],
                                            stage=f'{prefix}.convs_bridge') for i in range(L)]
        self.pred = [self.add_conv(f'convs_pred.{i}', head.convs_pred[i]) for i in range(L)]

    def run_segment(self, i: int, state: dict, ops) -> dict:
        new = {k: v for k, v in state.items() if k not in self.inputs}
        for lvl in range(self.levels):
            x = self.conv_module(ops, *self.bridge[lvl], state[f'p{lvl}'])
            new[f'pred{lvl}'] = ops.conv(self.pred[lvl], x)
        return new

    def format_outputs(self, outs: Sequence):
        return (list(outs),)
