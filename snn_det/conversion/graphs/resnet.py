"""Call graph of mmdet's ``ResNet`` / ``ResNetV1d`` (BasicBlock and Bottleneck).

Stem: conv -> norm -> relu -> MaxPool(3, s2).  Max-pooling spikes is not
max-pooling rates, but ReLU is monotone, so ``maxpool(relu(z)) =
relu(maxpool(z))``: the pool is applied to the stem's input *current*, before
its neuron, which is exact for the ANN.  With direct encoding the stem
convolution sees the same image at every step, so the current (and its pool) is
computed once and then fed to the stem neuron at every step.  (With a deep
stem the pool still precedes the last stem neuron; there its input changes
over time and pooling currents is an approximation.)

Blocks: each ``relu`` call is its own site (``act1``, ``act2``, ``act_out``); the
last fires on ``main + shortcut`` after the residual add.  A block is cut into one
segment per site: inside it the state is ``{'x': block input, 'y': main branch}``,
so layer-by-layer calibration runs each site's own convolution only, not the block's
prefix up to it (issue 12).
"""
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from ..errors import UnsupportedModuleError
from ...registry import GRAPHS
from .base import BackboneGraph, Site, check_conv, check_norm


@GRAPHS.register_module(name='ResNet')
class ResNetGraph(BackboneGraph):
    """Graph of an mmdet ResNet; raises :class:`UnsupportedModuleError` on anything else."""

    kind = 'backbone'

    def __init__(self, backbone: ResNet):
        super().__init__(backbone)
        if not isinstance(backbone, ResNet):
            raise UnsupportedModuleError('backbone', backbone, 'expected mmdet ResNet')
        self.deep_stem = backbone.deep_stem
        if not isinstance(backbone.maxpool, nn.MaxPool2d):
            raise UnsupportedModuleError('maxpool', backbone.maxpool)
        self._build_stem(backbone)
        self.blocks = []   # (stage index, block prefix, block, convs, downsample conv)
        self.segment_fns = [None]   # per segment: None (stem) or (block index, part)
        for i, layer_name in enumerate(backbone.res_layers):
            for j, block in enumerate(getattr(backbone, layer_name)):
                self._build_block(f'{layer_name}.{j}', block, i)
        # segment 0 is the stem; block k's last part is its output
        last_part = {k: i for i, fn in enumerate(self.segment_fns) if fn is not None
                     for k in [fn[0]]}
        self.out_segments = tuple(
            last_part[k] for k, (stage, *_) in enumerate(self.blocks)
            if stage in self.out_indices
            and (k + 1 == len(self.blocks) or self.blocks[k + 1][0] != stage))

    # -- structure -------------------------------------------------------
    def _build_stem(self, bb: ResNet) -> None:
        if self.deep_stem:
            stem = bb.stem
            convs = [0, 3, 6]
            for k, idx in enumerate(convs):
                path = f'stem.{idx}'
                conv = check_conv(path, stem[idx])
                self.add_unit(path, conv, check_norm(f'stem.{idx + 1}', stem[idx + 1]),
                              f'stem.{idx + 1}')
                if not isinstance(stem[idx + 2], nn.ReLU):
                    raise UnsupportedModuleError(f'stem.{idx + 2}', stem[idx + 2])
                last = k == len(convs) - 1
                self.add_site(Site(f'stem.{idx + 2}', conv.out_channels, path,
                                   post=bb.maxpool if last else None, stage='stem'))
        else:
            conv = check_conv('conv1', bb.conv1)
            self.add_unit('conv1', conv, check_norm(bb.norm1_name, bb.norm1), bb.norm1_name)
            self.add_site(Site('relu', conv.out_channels, 'conv1', post=bb.maxpool, stage='stem'))

    def _build_block(self, prefix: str, block: nn.Module, stage: int) -> None:
        if type(block) not in (BasicBlock, Bottleneck):
            raise UnsupportedModuleError(prefix, block, 'expected BasicBlock or Bottleneck')
        if getattr(block, 'with_plugins', False):
            raise UnsupportedModuleError(prefix, block, 'blocks with plugins are not supported')
        n = 2 if isinstance(block, BasicBlock) else 3
        stage_name = f'layer{stage + 1}'
        index = len(self.blocks)
        for k in range(1, n + 1):
            conv = check_conv(f'{prefix}.conv{k}', getattr(block, f'conv{k}'))
            norm_name = getattr(block, f'norm{k}_name')
            self.add_unit(f'{prefix}.conv{k}', conv,
                          check_norm(f'{prefix}.{norm_name}', getattr(block, norm_name)),
                          f'{prefix}.{norm_name}')
            if k < n:
                self.start_segment()
                self.segment_fns.append((index, k - 1))
                self.add_site(Site(f'{prefix}.act{k}', conv.out_channels, f'{prefix}.conv{k}',
                                   stage=stage_name))
        ds = block.downsample
        ds_conv = None
        if ds is not None:
            mods = list(ds)
            pools = [m for m in mods if isinstance(m, nn.AvgPool2d)]
            rest = [m for m in mods if not isinstance(m, nn.AvgPool2d)]
            if len(rest) != 2 or len(pools) > 1 or (pools and mods[0] is not pools[0]):
                raise UnsupportedModuleError(f'{prefix}.downsample', ds,
                                             'expected [AvgPool2d,] conv, norm')
            off = len(pools)
            ds_conv = f'{prefix}.downsample.{off}'
            self.add_unit(ds_conv, check_conv(ds_conv, mods[off]),
                          check_norm(f'{prefix}.downsample.{off + 1}', mods[off + 1]),
                          f'{prefix}.downsample.{off + 1}')
        out_ch = getattr(block, f'conv{n}').out_channels
        self.start_segment()
        self.segment_fns.append((index, n - 1))
        self.add_site(Site(f'{prefix}.act_out', out_ch, f'{prefix}.conv{n}', residual=True,
                           stage=stage_name))
        self.blocks.append((stage, prefix, block, n, ds_conv))

    # -- execution -------------------------------------------------------
    def run_segment(self, i: int, x, ops):
        if i == 0:
            return self._stem(x, ops)
        k, part = self.segment_fns[i]
        stage, prefix, block, n, ds_conv = self.blocks[k]
        identity, out = (x, x) if part == 0 else (x['x'], x['y'])
        if part < n - 1:             # act1 (act2): one convolution of the main branch
            out = ops.act(f'{prefix}.act{part + 1}', ops.conv(f'{prefix}.conv{part + 1}', out))
            return {'x': identity, 'y': out}
        if ds_conv is not None:
            if isinstance(block.downsample[0], nn.AvgPool2d):
                identity = block.downsample[0](identity)
            identity = ops.conv(ds_conv, identity)
        # main + shortcut goes straight to the neuron, which may fire over it (SnnOps.act)
        return ops.act(f'{prefix}.act_out', ops.add(ops.conv(f'{prefix}.conv{n}', out), identity))

    def _stem(self, x, ops):
        bb = self.backbone
        if self.deep_stem:
            x = ops.encode(ops.analog(lambda img: ops.conv('stem.0', img), x))
            x = ops.act('stem.2', x)
            x = ops.act('stem.5', ops.conv('stem.3', x))
            return ops.act('stem.8', bb.maxpool(ops.conv('stem.6', x)))
        x = ops.analog(lambda img: bb.maxpool(ops.conv('conv1', img)), x)
        x = ops.encode(x)
        return ops.act('relu', x)
