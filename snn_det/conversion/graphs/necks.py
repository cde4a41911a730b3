"""Call graphs of mmdet's ``FPN`` and ``YOLOV3Neck`` on spike trains.

``FPN`` (RetinaNet, Faster R-CNN) is linear: lateral 1x1 convolutions, top-down
upsampling and additions, 3x3 output convolutions, extra levels by a strided
convolution (``add_extra_convs``) or a 1x1 max-pool.  On spike trains it passes
per-step currents to the head's first neurons; it has no neuron of its own
(``relu_before_extra_convs`` would put one between two outputs and is refused).
Its 3x3 output convolutions and the head's first convolutions then multiply analog
currents at every step (MACs, not synaptic operations).

``spiking=True`` (``ConversionConfig.spiking_fpn``) puts spikes into every synapse of
FPN and of the head: a signed neuron (seed 003 Eq. 22 with negative slope 1, i.e. the
identity ``LeakyReLU(x, 1) = x`` in the ANN; FPN's currents are signed) on each lateral
after its top-down addition (``neck.lateral_convs.<i>.spike``: the input of its output
convolution and of the next level's addition) and on each output
(``neck.fpn_convs.<i>.spike``: the input of the head and of the next extra level).  They
are sites like any other: thresholds, calibration, Stage I.  Chosen over fusing each
linear chain into the convolution that consumes it, which is not exact here: the head's
convolutions are shared by all levels and the top-down path mixes levels through
upsampling, so no one convolution could absorb it.

``YOLOV3Neck``: three ``DetectionBlock`` (five ConvModule, Leaky-ReLU: signed
neurons, seed 003 Eq. 22), a 1x1 ConvModule, nearest upsampling (a spike train
stays a spike train) and concatenation with the next backbone output.
"""
import torch
import torch.nn.functional as F

from ..errors import UnsupportedModuleError
from ...registry import GRAPHS
from .parts import PartGraph, _check_type


@GRAPHS.register_module(name='FPN')
class FPNGraph(PartGraph):
    """mmdet ``FPN``: reads ``c0 .. c{n-1}``, writes ``p0 .. p{num_outs-1}``."""

    kind = 'neck'

    def __init__(self, fpn, prefix: str = 'neck', spiking: bool = False):
        from mmdet.models.necks import FPN
        super().__init__(fpn, prefix)
        _check_type(fpn, FPN, prefix)
        if fpn.relu_before_extra_convs and fpn.num_outs > fpn.backbone_end_level - \
                fpn.start_level + 1:
            raise UnsupportedModuleError(
                f'{prefix}.fpn_convs', fpn, 'relu_before_extra_convs puts a ReLU between two '
                'FPN outputs; its neuron would also change the analog output it reads')
        self.inputs = tuple(f'c{i}' for i in range(fpn.num_ins))
        self.outputs = tuple(f'p{i}' for i in range(fpn.num_outs))
        self.start_segment()          # one segment (its sites, if any, are ConvModule acts)
        self.lateral = [self.add_conv_module(f'lateral_convs.{i}', m)
                        for i, m in enumerate(fpn.lateral_convs)]
        self.fpn = [self.add_conv_module(f'fpn_convs.{i}', m)
                    for i, m in enumerate(fpn.fpn_convs)]
        self.spiking = bool(spiking)
        self.lateral_sites, self.out_sites = {}, {}
        if self.spiking:
            self._add_spiking_sites()

    def _add_spiking_sites(self) -> None:
        """Identity sites (signed neurons, slope 1) in execution order: the laterals from
        the coarsest down (each after its top-down addition), then the outputs."""
        m = self.module
        for _, act in self.lateral + self.fpn:
            if act is not None:
                raise UnsupportedModuleError(f'{self.prefix}.fpn_convs', m, 'spiking_fpn: '
                                             'FPN convolutions with an activation')
        used = len(self.lateral)
        for i in range(used - 1, -1, -1):
            self.lateral_sites[i] = self.add_site(
                self.path(f'lateral_convs.{i}.spike'), m.out_channels, self.lateral[i][0],
                negative_slope=1.0, residual=i < used - 1)
        for i in range(m.num_outs):
            if i < used or m.add_extra_convs:
                owner = self.fpn[i][0]
            else:                      # a max-pooled extra level: its input is a spike train
                continue
            self.out_sites[i] = self.add_site(self.path(f'fpn_convs.{i}.spike'),
                                              m.out_channels, owner, negative_slope=1.0)

    def _spike(self, ops, sites: dict, i: int, x):
        return ops.act(sites[i], x) if i in sites else x

    def run_segment(self, i: int, state: dict, ops) -> dict:
        m = self.module
        inputs = [state[n] for n in self.inputs]
        laterals = [self.conv_module(ops, *self.lateral[i], inputs[i + m.start_level])
                    for i in range(len(self.lateral))]
        used = len(laterals)
        sl, so = self.lateral_sites, self.out_sites
        for i in range(used - 1, 0, -1):
            laterals[i] = self._spike(ops, sl, i, laterals[i])
            if 'scale_factor' in m.upsample_cfg:
                laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], **m.upsample_cfg)
            else:
                laterals[i - 1] = laterals[i - 1] + F.interpolate(
                    laterals[i], size=laterals[i - 1].shape[2:], **m.upsample_cfg)
        laterals[0] = self._spike(ops, sl, 0, laterals[0])
        outs = [self._spike(ops, so, i, self.conv_module(ops, *self.fpn[i], laterals[i]))
                for i in range(used)]
        if m.num_outs > len(outs):
            if not m.add_extra_convs:
                for _ in range(m.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if m.add_extra_convs == 'on_input':
                    source = inputs[m.backbone_end_level - 1]
                elif m.add_extra_convs == 'on_lateral':
                    source = laterals[-1]
                else:
                    source = outs[-1]
                outs.append(self._spike(ops, so, used,
                                        self.conv_module(ops, *self.fpn[used], source)))
                for i in range(used + 1, m.num_outs):
                    outs.append(self._spike(ops, so, i,
                                            self.conv_module(ops, *self.fpn[i], outs[-1])))
        new = {k: v for k, v in state.items() if k not in self.inputs}
        new.update({n: o for n, o in zip(self.outputs, outs)})
        return new


@GRAPHS.register_module(name='YOLOV3Neck')
class YOLOV3NeckGraph(PartGraph):
    """mmdet ``YOLOV3Neck``: one segment per ConvModule (a chain, like Darknet's)."""

    kind = 'neck'

    def __init__(self, neck, prefix: str = 'neck'):
        from mmdet.models.necks import YOLOV3Neck
        from mmdet.models.necks.yolo_neck import DetectionBlock
        super().__init__(neck, prefix)
        _check_type(neck, YOLOV3Neck, prefix)
        n = neck.num_scales
        self.inputs = tuple(f'c{i}' for i in range(n))
        self.outputs = tuple(f'p{i}' for i in range(n))
        self.steps = []     # per segment: (unit, site, op) with op 'first' / 'cat' / 'out'
        for s in range(n):
            if s > 0:
                self.start_segment()
                self.steps.append(self.add_conv_module(f'conv{s}', getattr(neck, f'conv{s}'),
                                                       stage=f'{prefix}.conv{s}') + (None,))
            block = getattr(neck, f'detect{s + 1}')
            if type(block) is not DetectionBlock:
                raise UnsupportedModuleError(f'{prefix}.detect{s + 1}', block,
                                             'expected DetectionBlock')
            for k in range(1, 6):
                self.start_segment()
                unit, site = self.add_conv_module(f'detect{s + 1}.conv{k}',
                                                  getattr(block, f'conv{k}'),
                                                  stage=f'{prefix}.detect{s + 1}')
                op = ('first' if s == 0 else 'cat') if k == 1 else ('out' if k == 5 else None)
                self.steps.append((unit, site, (op, s) if op else None))

    def run_segment(self, i: int, state: dict, ops) -> dict:
        unit, site, op = self.steps[i]
        new = dict(state)
        n = len(self.inputs)
        if op is None:                         # conv{s}: 1x1 before the upsampling
            new['y'] = self.conv_module(ops, unit, site, state['y'])
            return new
        kind, s = op
        if kind == 'first':                    # detect1 on the deepest backbone output
            x = new.pop(f'c{n - 1}')
        elif kind == 'cat':                    # upsample, concatenate the next output
            up = F.interpolate(new.pop('y'), scale_factor=2)
            x = torch.cat((up, new.pop(f'c{n - 1 - s}')), 1)
        else:
            x = new.pop('y')
        y = self.conv_module(ops, unit, site, x)
        if kind == 'out':
            new[f'p{s}'] = y
        new['y'] = y
        if kind == 'out' and s == n - 1:
            new.pop('y')
        return new
