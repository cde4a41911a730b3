"""Image classification through the same spiking backbone path as detection.

The classifier itself is mmpretrain's ``ImageClassifier`` (backbone -> neck ->
head, ``data_preprocessor``, ``forward(inputs, data_samples, mode)``), with the
backbone a :class:`~snn_det.models.SpikingBackbone` around an mmdet ``ResNet``,
so ``tools/convert.py`` / ``tools/test.py`` reach it as ``model.backbone`` /
``cfg.model.backbone`` exactly as for a detector.  The configs in
``configs/cls/`` run under ``default_scope = 'mmdet'`` (so ``SpikingBackbone``
and ``ResNet`` resolve to mmdet's registry, as in detection) and name the
mmpretrain parts with their scope: ``mmpretrain.ImageClassifier``,
``mmpretrain.ClsDataPreprocessor``, ``mmpretrain.LinearClsHead``,
``mmpretrain.CustomDataset``, ``mmpretrain.PackInputs``, ``mmpretrain.Accuracy``.

This module adds the one piece mmdet lacks: :class:`ResNetCIFAR`, the CIFAR
variant of mmdet's ``ResNet`` (3x3 stride-1 stem, no max-pooling, and the
3-stage depths 20/32/44/56/110 of He et al. 2016).  It *is* an mmdet ``ResNet``
(same blocks, same state-dict names), so the converter's ``ResNetGraph``
handles it: the stem's pool is a 1x1 identity ``MaxPool2d``.
"""
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmdet.registry import MODELS
from torch import nn


@MODELS.register_module()
class ResNetCIFAR(ResNet):
    """mmdet ``ResNet`` with the CIFAR stem (conv3x3 s1 -> BN -> ReLU, no pooling).

    Besides ResNet's depths (18, 34, 50, ...; four stages) it accepts the
    CIFAR depths 20, 32, 44, 56 and 110 (three stages of BasicBlocks, widths
    ``base_channels * (1, 2, 4)``); give those ``num_stages=3`` with three
    ``strides``/``dilations`` and ``out_indices`` below 3.
    """

    arch_settings = {
        **ResNet.arch_settings,
        20: (BasicBlock, (3, 3, 3)),
        32: (BasicBlock, (5, 5, 5)),
        44: (BasicBlock, (7, 7, 7)),
        56: (BasicBlock, (9, 9, 9)),
        110: (BasicBlock, (18, 18, 18)),
    }

    def __init__(self, depth, deep_stem=False, **kwargs):
        if deep_stem:
            raise ValueError('ResNetCIFAR has a single 3x3 stem convolution; '
                             'deep_stem is not supported')
        block, stage_blocks = self.arch_settings.get(depth, (None, ()))
        num_stages = kwargs.get('num_stages', 4)
        if block is not None and num_stages > len(stage_blocks):
            raise ValueError(f'ResNetCIFAR depth {depth} has {len(stage_blocks)} stages; '
                             f'set num_stages={len(stage_blocks)} (got {num_stages})')
        super().__init__(depth, deep_stem=False, **kwargs)

    def _make_stem_layer(self, in_channels, stem_channels):
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels,
                                      kernel_size=3, stride=1, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        # identity pool: keeps the (conv -> norm -> relu -> maxpool) stem the graph expects
        self.maxpool = nn.MaxPool2d(kernel_size=1, stride=1, padding=0)


__all__ = ['ResNetCIFAR', 'BasicBlock', 'Bottleneck']
