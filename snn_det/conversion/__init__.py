from .config import CALIB_PRESETS, CALIB_STEPS, ConversionConfig, parse_calib
from .errors import ConversionStateError, UnsupportedModuleError
from .fold_bn import fold_conv_bn
from .graphs import build_graph
from .spiking_net import SpikingNet
from .thresholds import ActivationObserver, choose_threshold

__all__ = ['ConversionConfig', 'parse_calib', 'CALIB_PRESETS', 'CALIB_STEPS',
           'UnsupportedModuleError',
           'ConversionStateError', 'fold_conv_bn', 'build_graph', 'SpikingNet',
           'ActivationObserver', 'choose_threshold']
