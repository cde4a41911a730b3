from .classifier import ResNetCIFAR
from .darknet import ScaledDarknet
from .spiking_backbone import HeadOutputs, SpikingBackbone
from .spiking_detector import SpikingDetector, attach_scope

__all__ = ['SpikingBackbone', 'SpikingDetector', 'HeadOutputs', 'attach_scope',
           'ScaledDarknet', 'ResNetCIFAR']
