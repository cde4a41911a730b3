"""The call graph of a backbone, written once and executed in several modes.

A graph lists the backbone's convolution units (conv + its norm) and its
activation *call sites* in execution order, and implements ``forward(x, ops)``
with every convolution and activation going through ``ops``.  The same forward
therefore runs as the original ANN (:class:`~snn_det.conversion.ops.AnnOps`),
as the BN-folded spiking network (:class:`~snn_det.conversion.ops.SnnOps`) and
under calibration recorders, with one neuron per call site (mmdet's ResNet
reuses one ``nn.ReLU`` 2-3 times per block; here each call is its own site).

The forward is cut into *segments*, one per activation site or a little more
(the stem, each part of a residual block, each plain convolution module), that
pass one tensor from one to the next, or inside a residual block a small named
state (``{'x': block input, 'y': main branch}``).
``forward(x, ops, start, stop)`` runs a range of segments, so layer-by-layer
calibration can keep each calibration batch's state at the boundary it has
reached and run only the segment being calibrated: the total cost is linear in
depth instead of one forward up to every layer (quadratic), and each site's
statistics cost its own convolution.
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
        self.segments: List[List[str]] = []     # site names of each segment, in order
        self.out_segments: Tuple[int, ...] = ()  # segments whose output is a backbone output

    def start_segment(self) -> None:
        """Sites added from now on belong to a new segment."""
        self.segments.append([])

    def add_unit(self, path: str, conv: nn.Module, norm: Optional[nn.Module],
                 norm_path: Optional[str] = None) -> None:
        self.units[path] = ConvUnit(path, conv, norm, norm_path)

    def add_site(self, site: Site) -> None:
        if not self.segments:
            self.start_segment()
        self.sites.append(site)
        self.segments[-1].append(site.name)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def segment_of(self, site: str) -> int:
        """Index of the segment that holds ``site``."""
        for i, names in enumerate(self.segments):
            if site in names:
                return i
        raise KeyError(site)

    def run_segment(self, i: int, x, ops):
        """Run segment ``i`` on its input ``x``; returns its output tensor."""
        raise NotImplementedError

    def forward(self, x, ops, start: int = 0, stop: Optional[int] = None):
        """Run the backbone with convolutions and activations taken from ``ops``.

        By default from the image to the end, returning the tuple of outputs.
        With ``start`` > 0, ``x`` is the input of segment ``start`` (as produced by
        an earlier call with ``stop=start``); with ``stop`` set, the input of
        segment ``stop`` is returned instead of the outputs.
        """
        end = len(self.segments) if stop is None else stop
        outs = []
        for i in range(start, end):
            x = self.run_segment(i, x, ops)
            if i in self.out_segments:
                outs.append(x)
        return x if stop is not None else tuple(outs)


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
