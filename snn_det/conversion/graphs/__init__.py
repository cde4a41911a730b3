"""Backbone call graphs: which architectures the converter supports."""
from torch import nn

from ..errors import UnsupportedModuleError
from .base import BackboneGraph, ConvUnit, Site


def build_graph(backbone: nn.Module) -> BackboneGraph:
    """Return the call graph of a supported mmdet backbone (ResNet, Darknet)."""
    from mmdet.models.backbones.darknet import Darknet
    from mmdet.models.backbones.resnet import ResNet

    from .darknet import DarknetGraph
    from .resnet import ResNetGraph
    if isinstance(backbone, ResNet):
        return ResNetGraph(backbone)
    if isinstance(backbone, Darknet):
        return DarknetGraph(backbone)
    raise UnsupportedModuleError('backbone', backbone,
                                 'supported backbones are mmdet ResNet and Darknet')


__all__ = ['BackboneGraph', 'ConvUnit', 'Site', 'build_graph']
