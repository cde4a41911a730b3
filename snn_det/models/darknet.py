"""A Darknet of configurable width and depth (mmdet's ``Darknet`` only builds D-53).

The structure is Darknet's own -- ConvModule (conv, BN, LeakyReLU 0.1), a
stride-2 conv per stage followed by residual blocks -- only the channels are
scaled by ``widen_factor`` and the blocks per stage can be set, so a detector
small enough to train on a CPU still is a real Darknet.
"""
from typing import Sequence

from mmcv.cnn import ConvModule

from mmdet.models.backbones.darknet import Darknet
from mmdet.registry import MODELS


@MODELS.register_module()
class ScaledDarknet(Darknet):
    """Darknet-53 layout with ``widen_factor`` x channels and optional ``stage_blocks``."""

    def __init__(self, widen_factor: float = 1.0, stage_blocks: Sequence[int] = (1, 2, 8, 8, 4),
                 depth: int = 53, **kwargs):
        layers, channels = Darknet.arch_settings[53]
        layers = tuple(stage_blocks)

        def w(c):
            return max(8, int(round(c * widen_factor / 2)) * 2)
        channels = tuple((w(i), w(o)) for i, o in channels[:len(layers)])
        self.arch_settings = {depth: (layers, channels)}
        super().__init__(depth=depth, **kwargs)
        # the stem conv of Darknet has 32 channels fixed; scale it like the rest
        cfg = dict(conv_cfg=kwargs.get('conv_cfg'),
                   norm_cfg=kwargs.get('norm_cfg', dict(type='BN', requires_grad=True)),
                   act_cfg=kwargs.get('act_cfg', dict(type='LeakyReLU', negative_slope=0.1)))
        self.conv1 = ConvModule(3, channels[0][0], 3, padding=1, **cfg)
