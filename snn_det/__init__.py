"""snn-det: ANN-to-SNN conversion of MMDetection backbones.

Importing the package registers its modules in mmdet's ``MODELS`` registry and
installs the checkpoint loader (see :mod:`snn_det.utils.checkpoint`); configs
load it with ``custom_imports = dict(imports=['snn_det'])``.
"""
from .version import __version__
from .utils.checkpoint import install_checkpoint_loader
from . import models  # noqa: F401,E402  (registers modules)

install_checkpoint_loader()

__all__ = ['__version__']
