from .classifier import ResNetCIFAR
from .darknet import ScaledDarknet
from .spiking_backbone import SpikingBackbone

__all__ = ['SpikingBackbone', 'ScaledDarknet', 'ResNetCIFAR']
