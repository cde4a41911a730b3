"""Execution modes of a backbone graph.

``AnnOps`` runs the original ANN modules (conv -> norm -> activation per site),
``SnnOps`` runs a :class:`~snn_det.conversion.spiking_net.SpikingNet`: BN-folded
convolutions on time-folded batches ``[K*B, C, H, W]`` and one IF neuron per
site stepping through the K steps of the current time chunk.

Both accept a *recorder* (``recorder(kind, name, tensor, steps)``, where
``steps`` is the number K of time steps folded into the batch, or ``None`` for
an analog tensor) that observes site
inputs/outputs and convolution inputs; it may raise :class:`StopForward` to end a
forward early once the layer being calibrated has been reached.  A recorder whose
``reads_site_in`` is False is not shown site inputs; then, as without a recorder, a
neuron may write its spikes over its input current when that is a temporary nothing
else holds (:func:`_unshared`).
"""
import sys
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..neurons.if_neuron import step_format


def _storage_uses(t: Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


#: what :func:`_storage_uses` counts for a tensor that alone holds its storage
_SOLE_STORAGE_USES = _storage_uses(torch.empty(1))


def _unshared(x: Tensor, refs: int) -> bool:
    """Whether ``x`` (held by ``refs`` Python references, the caller's argument
    included) is a temporary that nothing else can read again: a time-folded tensor
    (the output of a convolution or of a residual addition passed straight on), not a
    view, the only tensor on its storage, not part of an autograd graph (so no backward
    has saved it), and held by the one argument.  Then a neuron may write its spikes
    over it (``IFNeuron(x, inplace=True)``; BPTT's autograd steps never do): the same
    numbers, without a new K-step buffer.  Anything else, a name still bound to it or a
    view of it elsewhere included, is left alone."""
    return (refs <= 1 and x.dim() == 4 and x._base is None and not x.requires_grad
            and x.grad_fn is None and x.stride(0) != 0
            and _storage_uses(x) <= _SOLE_STORAGE_USES)


def sum_over_time(x: Tensor, steps: int) -> Tensor:
    """``sum_t x[t]`` of a time-folded ``[steps * B, ...]`` tensor: ``[B, ...]`` in ``x``'s
    own layout.  A channels-last ``x`` is summed in its memory order (as rows of
    ``H * W * C`` contiguous numbers, one row per step): a reduction over the outer dim of a
    strided view was 26x slower on a CPU (ad hoc, 8 x 256 x 200 x 336)."""
    if step_format(x) == torch.channels_last:
        n, c, h, w = x.shape
        s = x.permute(0, 2, 3, 1).reshape(steps, -1).sum(0)
        return s.view(n // steps, h, w, c).permute(0, 3, 1, 2)
    return x.reshape(steps, -1, *x.shape[1:]).sum(0)


class StopForward(Exception):
    """Raised by a recorder to stop a forward pass after the site it needs."""


class AnnOps:
    """The analog network. ``acts`` may replace a site's activation (QCFS, QC)."""

    time_folded = False

    def __init__(self, graph, acts: Optional[Dict[str, nn.Module]] = None,
                 convs: Optional[Dict[str, nn.Module]] = None,
                 recorder: Optional[Callable] = None):
        self.graph = graph
        self.acts = acts or {}
        self.convs = convs          # folded convolutions instead of conv + norm
        self.recorder = recorder

    def conv(self, path: str, x: Tensor) -> Tensor:
        if self.recorder is not None:
            self.recorder('conv_in', path, x, None)
        if self.convs is not None:
            return self.convs[path](x)
        unit = self.graph.units[path]
        y = unit.conv(x)
        return unit.norm(y) if unit.norm is not None else y

    def analog(self, fn: Callable, x: Tensor) -> Tensor:
        """The analog part of the network before the encoding (``fn(x)`` on the image)."""
        return fn(x)

    def encode(self, x: Tensor) -> Tensor:
        return x

    def add(self, a: Tensor, b: Tensor) -> Tensor:
        """A residual addition ``a + b``."""
        return a + b

    def act(self, name: str, x: Tensor) -> Tensor:
        if self.recorder is not None:
            self.recorder('site_in', name, x, None)
        if name in self.acts:
            y = self.acts[name](x)
        else:
            slope = self.graph.site(name).negative_slope
            y = F.relu(x) if slope is None else F.leaky_relu(x, slope)
        if self.recorder is not None:
            self.recorder('site_out', name, y, None)
        return y


class BiasAfterConv2d(nn.Conv2d):
    """A spiking network's (BN-folded) convolution: the product ``W * x``, then the bias
    added to it, not fused into the convolution.  A product kept by calibration's first
    pass plus a corrected bias is then bit for bit what the network computes
    (:mod:`~snn_det.runtime.currents`; a CPU convolution that adds its bias inside
    may round differently).  ``currents`` (with the convolution's ``path``) gives a kept
    product instead of computing it, or keeps the one computed."""

    @classmethod
    def of(cls, conv: nn.Conv2d) -> 'BiasAfterConv2d':
        """The same convolution (its parameters shared, not copied)."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                  conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                  conv.padding_mode, device='meta')
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    def forward(self, x: Tensor, currents=None, path: Optional[str] = None) -> Tensor:
        z = None
        if currents is not None:
            z = currents.product(path, self, x.shape[0], x.device)
        if z is None:
            z = self._conv_forward(x, self.weight, None)
            if currents is not None:
                currents.computed(path, z)
        if self.bias is None:
            return z
        b = self.bias.view(1, -1, 1, 1)
        if torch.is_grad_enabled() and (self.bias.requires_grad or z.requires_grad):
            return z + b
        return z.add_(b)


class SnnOps:
    """The spiking network for one time chunk of ``steps`` steps.

    The analog part before the encoding (the stem convolution on the constant
    image) runs once per chunk, or once per run when the caller passes an
    ``analog_cache`` shared by its chunks; ``encode`` repeats its output ``steps``
    times (direct encoding: the analog image is the input current of the first
    layer at every step), as a stride-0 view that the first neuron reads without a
    copy (only a recorder gets a time-folded copy).
    """

    time_folded = True

    def __init__(self, net, steps: int, recorder: Optional[Callable] = None,
                 encoded: bool = False, analog_cache: Optional[dict] = None,
                 currents=None):
        self.net = net
        self.steps = steps
        self.recorder = recorder
        self.encoded = encoded      # True when starting past the encoding segment
        self.analog_cache = analog_cache
        # calibration's kept convolution products (snn_det.runtime.currents)
        self.currents = currents

    def conv(self, path: str, x: Tensor) -> Tensor:
        """The input current ``W * x + b`` of a folded convolution
        (:class:`BiasAfterConv2d`), or its product kept by calibration plus the bias."""
        if self.recorder is not None:
            self.recorder('conv_in', path, x, self.steps if self.encoded else None)
        return self.net.convs[self.net.key(path)](x, self.currents, path)

    def analog(self, fn: Callable, x: Tensor) -> Tensor:
        """``fn(x)``, computed once per run when an ``analog_cache`` is shared (the
        image, and so this current, is the same in every time chunk)."""
        if self.analog_cache is None:
            return fn(x)
        if 'analog' not in self.analog_cache:
            self.analog_cache['analog'] = fn(x)
        return self.analog_cache['analog']

    def encode(self, x: Tensor) -> Tensor:
        """``x`` at each of the chunk's steps, ``[K, B, C, H, W]``: a view, stride 0 in
        time (the only tensor that is not time-folded; :meth:`act` takes it)."""
        self.encoded = True
        return x.unsqueeze(0).expand(self.steps, *x.shape)

    def add(self, a: Tensor, b: Tensor) -> Tensor:
        """A residual addition ``a + b``, into ``a`` when nothing else can see it: ``a`` is
        this pass's fresh convolution or neuron output, and without autograd or a recorder
        (which may keep references to site outputs) no one else holds it; or, recorder or
        not, ``a`` is a temporary nothing else holds (:func:`_unshared`: a convolution
        output passed straight in, which recorders never see).  The same sum
        (bit-identical), without a fresh T-fold tensor per block."""
        refs = sys.getrefcount(a) - 1
        if a.shape == b.shape and (
                (self.recorder is None and not torch.is_grad_enabled() and a.stride(0) != 0)
                or _unshared(a, refs)):
            return a.add_(b)
        return a + b

    def act(self, name: str, x: Tensor) -> Tensor:
        # the input current is a temporary no one else sees: the neuron may fire over it
        refs = sys.getrefcount(x) - 1         # this frame's argument, and any other holder
        reads_in = self.recorder is not None and getattr(self.recorder, 'reads_site_in', True)
        neuron = self.net.neurons[self.net.key(name)]
        inplace = not reads_in and getattr(neuron, 'fires_in_place', False) \
            and _unshared(x, refs)
        k = self.steps
        steps = x if x.dim() == 5 else x.reshape(k, -1, *x.shape[1:])   # [K, B, C, H, W]
        if reads_in:                    # recorders see time-folded tensors (a copy here)
            self.recorder('site_in', name, steps.reshape(-1, *steps.shape[2:]), k)
        y = neuron(steps, inplace=True) if inplace else neuron(steps)
        y = y.reshape(-1, *y.shape[2:])
        if self.recorder is not None:
            self.recorder('site_out', name, y, k)
        return y
