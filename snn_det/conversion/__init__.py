from .config import CALIB_PRESETS, ConversionConfig, calib_steps, parse_calib
from .errors import ConversionStateError, UnsupportedModuleError
from .fold_bn import fold_conv_bn
from .graphs import build_graph
from .spiking_net import SpikingNet
from .thresholds import ActivationObserver, choose_threshold

__all__ = ['ConversionConfig', 'parse_calib', 'CALIB_PRESETS', 'calib_steps',
           'UnsupportedModuleError',
           'ConversionStateError', 'fold_conv_bn', 'build_graph', 'SpikingNet',
           'ActivationObserver', 'choose_threshold']
