"""Call graphs of the parts after the backbone: necks and heads (issue 13).

A part graph works like a :class:`~snn_det.conversion.graphs.base.BackboneGraph`
(convolution units, activation call sites, segments, every convolution and
activation through ``ops``), but on a *named state*: a dict of the tensors that
are still needed (the backbone's outputs ``c0, c1, ...``, the neck's outputs
``p0, p1, ...``, a branch's running feature).  A segment reads what it uses
from the state and returns the state that follows it; tensors it does not touch
pass through unchanged (the same objects), so a calibration frontier keeps their
stored codes instead of encoding them again.

Linear layers act on spike trains step by step (time is folded into the
batch): convolutions, nearest / bilinear upsampling, additions, concatenation,
max-pooling with a 1x1 window.  Every activation becomes a neuron (ReLU: IF,
Leaky-ReLU: signed, seed 003 Eq. 22).  A convolution shared by several calls
(RetinaHead applies one tower to every FPN level) is one *unit per call*
(``<path>@<level>``): each call gets its own folded copy, threshold and
calibration, as each ResNet ``relu`` call gets its own neuron.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from torch import nn

from ..errors import UnsupportedModuleError
from .base import ConvUnit, Site, check_conv, check_norm


class PartGraph:
    """Units, sites and segments of a neck or a head; ``prefix`` is its detector path."""

    #: kind of part ('neck' or 'head') and the state names it reads and writes
    kind = ''

    def __init__(self, module: nn.Module, prefix: str):
        self.module = module
        self.prefix = prefix
        self.units: Dict[str, ConvUnit] = {}
        self.sites: List[Site] = []
        self.segments: List[List[str]] = []
        self.inputs: Tuple[str, ...] = ()
        self.outputs: Tuple[str, ...] = ()

    def start_segment(self) -> None:
        self.segments.append([])

    def path(self, rel: str, level: Optional[int] = None) -> str:
        p = f'{self.prefix}.{rel}'
        return p if level is None else f'{p}@{level}'

    def add_conv(self, rel: str, conv: nn.Module, level: Optional[int] = None,
                 norm: Optional[nn.Module] = None, norm_rel: Optional[str] = None) -> str:
        """A plain convolution unit (a prediction convolution); returns its path."""
        path = self.path(rel, level)
        self.units[path] = ConvUnit(path, check_conv(self.path(rel), conv),
                                    check_norm(self.path(norm_rel or rel), norm),
                                    self.path(norm_rel) if norm_rel else None)
        return path

    def add_conv_module(self, rel: str, m: nn.Module, level: Optional[int] = None,
                        stage: str = '') -> Tuple[str, Optional[str]]:
        """An mmcv ``ConvModule`` (conv -> norm -> activation): its unit and its site
        (``None`` without an activation).  Returns ``(unit path, site name)``."""
        from mmcv.cnn import ConvModule
        if not isinstance(m, ConvModule):
            raise UnsupportedModuleError(self.path(rel), m, 'expected an mmcv ConvModule')
        if tuple(m.order) != ('conv', 'norm', 'act') or m.with_spectral_norm:
            raise UnsupportedModuleError(self.path(rel), m,
                                         f'order {m.order} is not conv-norm-act')
        norm = m.norm if m.with_norm else None
        unit = self.add_conv(f'{rel}.conv', m.conv, level, norm,
                             f'{rel}.{m.norm_name}' if m.with_norm else None)
        if not m.with_activation:
            return unit, None
        act = m.activate
        if isinstance(act, nn.LeakyReLU):
            slope = float(act.negative_slope)
        elif type(act) is nn.ReLU:
            slope = None
        else:
            raise UnsupportedModuleError(self.path(f'{rel}.activate'), act,
                                         'only ReLU and LeakyReLU activations can spike')
        site = self.add_site(self.path(f'{rel}.activate', level), m.conv.out_channels, unit,
                             stage, slope)
        return unit, site

    def add_site(self, name: str, channels: int, owner: str, stage: str = '',
                 negative_slope: Optional[float] = None, residual: bool = False) -> str:
        """An activation call site ``name`` after unit ``owner``, in the current segment
        (``residual``: other currents are added to the owner's output before it)."""
        if not self.segments:
            self.start_segment()
        self.sites.append(Site(name, channels, owner, negative_slope=negative_slope,
                               residual=residual, stage=stage or self.prefix))
        self.segments[-1].append(name)
        return name

    @staticmethod
    def conv_module(ops, unit: str, site: Optional[str], x):
        if site is None:
            return ops.conv(unit, x)
        return ops.act(site, ops.conv(unit, x))     # no name kept: see SnnOps.act

    def run_segment(self, i: int, state: dict, ops) -> dict:
        raise NotImplementedError

    def format_outputs(self, outs: Sequence):
        """The part's forward output, in its module's own structure, from ``outputs``."""
        return tuple(outs)


def _check_type(module, cls, prefix):
    if type(module) is not cls:
        raise UnsupportedModuleError(prefix, module, f'expected mmdet {cls.__name__} '
                                     '(subclasses may change its forward)')
