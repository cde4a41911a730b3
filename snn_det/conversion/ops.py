"""Execution modes of a backbone graph.

``AnnOps`` runs the original ANN modules (conv -> norm -> activation per site),
``SnnOps`` runs a :class:`~snn_det.conversion.spiking_net.SpikingNet`: BN-folded
convolutions on time-folded batches ``[K*B, C, H, W]`` and one IF neuron per
site stepping through the K steps of the current time chunk.

Both accept a *recorder* (``recorder(kind, name, tensor, steps)``, where
``steps`` is the number K of time steps folded into the batch, or ``None`` for
an analog tensor) that observes site
inputs/outputs and convolution inputs; it may raise :class:`StopForward` to end a
forward early once the layer being calibrated has been reached.
"""
from typing import Callable, Dict, Optional

import torch.nn.functional as F
from torch import Tensor, nn


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

    def encode(self, x: Tensor) -> Tensor:
        return x

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


class SnnOps:
    """The spiking network for one time chunk of ``steps`` steps.

    The stem convolution runs on the (constant) image once per chunk; ``encode``
    repeats its output ``steps`` times (direct encoding: the analog image is the
    input current of the first layer at every step).
    """

    time_folded = True

    def __init__(self, net, steps: int, recorder: Optional[Callable] = None,
                 encoded: bool = False):
        self.net = net
        self.steps = steps
        self.recorder = recorder
        self.encoded = encoded      # True when starting past the encoding segment

    def conv(self, path: str, x: Tensor) -> Tensor:
        if self.recorder is not None:
            self.recorder('conv_in', path, x, self.steps if self.encoded else None)
        return self.net.convs[self.net.key(path)](x)

    def encode(self, x: Tensor) -> Tensor:
        self.encoded = True
        return x.unsqueeze(0).expand(self.steps, *x.shape).reshape(-1, *x.shape[1:])

    def act(self, name: str, x: Tensor) -> Tensor:
        k = self.steps
        if self.recorder is not None:
            self.recorder('site_in', name, x, k)
        neuron = self.net.neurons[self.net.key(name)]
        y = neuron(x.reshape(k, -1, *x.shape[1:])).reshape(x.shape)
        if self.recorder is not None:
            self.recorder('site_out', name, y, k)
        return y
