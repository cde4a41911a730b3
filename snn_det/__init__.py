"""snn-det: ANN-to-SNN conversion of MMDetection backbones.

Importing the package registers its modules in mmdet's ``MODELS`` registry and
installs the checkpoint loader (see :mod:`snn_det.utils.checkpoint`); configs
load it with ``custom_imports = dict(imports=['snn_det'])``.  Importing it changes
no environment variable and no allocator setting of the process.
"""
import warnings

# mmengine 0.10.7 imports pkg_resources to resolve `mmdet::` base configs
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

from .version import __version__  # noqa: E402
from .utils.checkpoint import install_checkpoint_loader  # noqa: E402
from . import engine, models  # noqa: F401,E402  (registers modules)
from .neurons import qc  # noqa: F401,E402  (registers QCFS / QCActivation)

install_checkpoint_loader()

__all__ = ['__version__']
