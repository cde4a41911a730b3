"""The call graph of a backbone, written once and executed in several modes.

A graph lists the backbone's convolution units (conv + its norm) and its
activation *call sites* in execution order, and implements ``forward(x, ops)``
with every convolution and activation going through ``ops``.  The same forward
therefore runs as the original ANN (:class:`~snn_det.conversion.ops.AnnOps`),
as the BN-folded spiking network (:class:`~snn_det.conversion.ops.SnnOps`) and
under calibration recorders, with one neuron per call site (mmdet's ResNet
reuses one ``nn.ReLU`` 2-3 times per block; here each call is its own site).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from torch import nn


@dataclass
class ConvUnit:
    """A convolution and the norm layer folded into it."""
    path: str                      # dotted path of the conv in the backbone
    conv: nn.Conv2d
    norm: Optional[nn.Module]
    norm_path: Optional[str] = None


@dataclass
class Site:
    """One activation call site, which becomes one spiking neuron.

    ``owner`` is the convolution whose output (after ``post`` and a possible
    residual ``+ shortcut``) is this site's input current: calibrating biases or
    weights of the site means changing that convolution.
    """
    name: str
    channels: int
    owner: str
    negative_slope: Optional[float] = None    # None: ReLU; float: Leaky-ReLU
    post: Optional[nn.Module] = None          # stateless op between owner and site
    residual: bool = False                    # a shortcut is added before the site
    stage: str = ''

    @property
    def signed(self) -> bool:
        return self.negative_slope is not None


class BackboneGraph:
    """Base class; subclasses fill ``units`` and ``sites`` and define forward."""

    def __init__(self, backbone: nn.Module):
        self.backbone = backbone
        self.units: Dict[str, ConvUnit] = {}
        self.sites: List[Site] = []
        self.out_indices: Tuple[int, ...] = tuple(getattr(backbone, 'out_indices', ()))

    def add_unit(self, path: str, conv: nn.Module, norm: Optional[nn.Module],
                 norm_path: Optional[str] = None) -> None:
        self.units[path] = ConvUnit(path, conv, norm, norm_path)

    def add_site(self, site: Site) -> None:
        self.sites.append(site)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def forward(self, x, ops) -> tuple:
        """Run the backbone with convolutions and activations taken from ``ops``."""
        raise NotImplementedError


def check_conv(path: str, module: nn.Module) -> nn.Conv2d:
    """The module must be a plain ``nn.Conv2d`` (no deformable, no weight standardisation)."""
    from ..errors import UnsupportedModuleError
    if type(module) is not nn.Conv2d:
        raise UnsupportedModuleError(path, module, 'only nn.Conv2d convolutions can be converted')
    return module


def check_norm(path: str, module: nn.Module):
    """The module must be a batch norm (foldable into the convolution) or absent."""
    from torch.nn.modules.batchnorm import _BatchNorm

    from ..errors import UnsupportedModuleError
    if module is None:
        return None
    if not isinstance(module, _BatchNorm):
        raise UnsupportedModuleError(path, module, 'only batch norm can be folded (Eq. 25)')
    return module
