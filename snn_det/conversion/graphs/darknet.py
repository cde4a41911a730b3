"""Call graph of mmdet's ``Darknet`` (ConvModule = conv -> BN -> LeakyReLU, ResBlock).

Every ConvModule's activation is a site; Leaky-ReLU sites become signed neurons
(seed 003 Eq. 22).  A ResBlock adds its input to ``conv2``'s output *without*
an activation, so the stage output is a sum of two spike trains: it is passed
on linearly (the next convolution is linear in it) and read out as a rate.  A
ResBlock is two segments (one per site; in between the state is
``{'x': block input, 'y': conv1's spikes}``).
"""
from mmcv.cnn import ConvModule
from mmdet.models.backbones.darknet import Darknet, ResBlock
from torch import nn

from ..errors import UnsupportedModuleError
from ...registry import GRAPHS
from .base import BackboneGraph, Site, check_conv, check_norm


@GRAPHS.register_module(name='Darknet')
class DarknetGraph(BackboneGraph):
    """Graph of an mmdet Darknet (and subclasses with other widths/depths)."""

    kind = 'backbone'

    def __init__(self, backbone: Darknet):
        super().__init__(backbone)
        if not isinstance(backbone, Darknet):
            raise UnsupportedModuleError('backbone', backbone, 'expected mmdet Darknet')
        self.stages = []   # (name, [conv module paths], [res block paths])
        self.segment_fns = []   # per segment: ('conv', path) or ('res', path)
        outs = []
        for i, name in enumerate(backbone.cr_blocks):
            block = getattr(backbone, name)
            if isinstance(block, ConvModule):
                self.start_segment()
                self.segment_fns.append(('conv', name))
                self._add_conv_module(name, block, name)
                self.stages.append((name, [name], []))
                if i in self.out_indices:
                    outs.append(len(self.segments) - 1)
                continue
            if not isinstance(block, nn.Sequential):
                raise UnsupportedModuleError(name, block)
            convs, res = [], []
            for child_name, child in block.named_children():
                path = f'{name}.{child_name}'
                if isinstance(child, ConvModule):
                    if res:
                        raise UnsupportedModuleError(path, child, 'conv after residual blocks')
                    self.start_segment()
                    self.segment_fns.append(('conv', path))
                    self._add_conv_module(path, child, name)
                    convs.append(path)
                elif isinstance(child, ResBlock):     # one segment per site
                    self.start_segment()
                    self.segment_fns.append(('res1', path))
                    self._add_conv_module(f'{path}.conv1', child.conv1, name)
                    self.start_segment()
                    self.segment_fns.append(('res2', path))
                    self._add_conv_module(f'{path}.conv2', child.conv2, name)
                    res.append(path)
                else:
                    raise UnsupportedModuleError(path, child)
            self.stages.append((name, convs, res))
            if i in self.out_indices and self.segments:
                outs.append(len(self.segments) - 1)
        self.out_segments = tuple(outs)

    def _add_conv_module(self, path: str, m: ConvModule, stage: str) -> None:
        if not isinstance(m, ConvModule):
            raise UnsupportedModuleError(path, m, 'expected ConvModule')
        if tuple(m.order) != ('conv', 'norm', 'act') or m.with_spectral_norm:
            raise UnsupportedModuleError(path, m, f'order {m.order} is not conv-norm-act')
        conv = check_conv(f'{path}.conv', m.conv)
        norm = check_norm(f'{path}.{m.norm_name}', m.norm) if m.with_norm else None
        self.add_unit(f'{path}.conv', conv, norm, f'{path}.{m.norm_name}' if m.with_norm else None)
        if not m.with_activation:
            raise UnsupportedModuleError(path, m, 'ConvModule without activation')
        act = m.activate
        if isinstance(act, nn.LeakyReLU):
            slope = float(act.negative_slope)
        elif isinstance(act, nn.ReLU):
            slope = None
        else:
            raise UnsupportedModuleError(f'{path}.activate', act, 'only ReLU and LeakyReLU')
        self.add_site(Site(f'{path}.activate', conv.out_channels, f'{path}.conv',
                           negative_slope=slope, stage=stage))

    def run_segment(self, i: int, x, ops):
        kind, path = self.segment_fns[i]
        if kind == 'conv':
            if i == 0:                  # direct encoding: the first conv sees the image
                return ops.act(f'{path}.activate', ops.encode(
                    ops.analog(lambda img: ops.conv(f'{path}.conv', img), x)))
            # the current goes straight to the neuron, which may fire over it (SnnOps.act)
            return ops.act(f'{path}.activate', ops.conv(f'{path}.conv', x))
        if kind == 'res1':        # inside a ResBlock the state is {'x': input, 'y': branch}
            return {'x': x, 'y': ops.act(f'{path}.conv1.activate',
                                         ops.conv(f'{path}.conv1.conv', x))}
        out = ops.act(f'{path}.conv2.activate', ops.conv(f'{path}.conv2.conv', x['y']))
        return ops.add(out, x['x'])
