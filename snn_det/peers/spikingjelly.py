"""SpikingJelly 2.0 as a peer: its own ann2snn recipes, and its IF neuron in our nets.

:class:`SpikingJellyPeer` converts a backbone with ``spikingjelly.activation_based.
ann2snn.Converter`` (its ``torch.fx`` path) and one of its recipes, run as its
examples run them (``examples/resnet18_cifar10.py``, ``imagenet_resnet18_ltb.py``):

* ``recipe='rate'``: ``RateCodingRecipe(mode='max' | '99.9%')``: BN folded into the
  convolutions, each ``nn.ReLU`` replaced by scale / ``IFNode`` (soft reset, threshold 1)
  / scale, the scale being the running (momentum 0.1) max or 99.9th percentile of that
  ReLU's output over the calibration batches (data-based normalisation, Diehl et al. 2015
  Eq. 1-2; the percentile of Rueckauer et al. 2017 Sec. 2.3); ``channel_wise=True`` for
  its per-channel variant;
* ``recipe='ltb'``: ``LocalThresholdBalancingRecipe``: per-channel thresholds grown by
  twice the mean overflow of each calibration batch (Bu et al., CVPR 2025, "inference-scale"
  conversion), ``HalfThresholdIFNode`` neurons.  The thresholds start at zero and grow one
  update per batch, so the recipe needs many batches: its ImageNet example
  (``imagenet_resnet18_ltb.py``) calibrates on 50,000 images and reads out from a delayed
  start step (``estimate_delay_start``, ``--delay-start auto``).  ``updates`` cycles the
  calibration batches to that many threshold updates and ``delay_start='auto'`` reads out
  as the example does, from the step SpikingJelly estimates, averaging the steps after it.

The converted graph module is run in SpikingJelly's multi-step mode (the same numbers as
the single-step loop of its examples, faster), reset with ``functional.reset_net``.  Where the recipe
leaves an activation analog (it replaces ``nn.ReLU`` only: Darknet's ``LeakyReLU``
stays), the conversion is refused with :class:`~.base.PeerUnsupportedError` instead
of simulating a hybrid network.

:class:`SpikingJellyIF` / :func:`spikingjelly_net` are the other use: SpikingJelly's
multi-step ``IFNode`` in place of each IF neuron of *our* converted network (same
thresholds), for ``tools/speed_benchmark.py``'s bit-identity and speed comparison.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .base import (PEERS, Peer, PeerNet, PeerUnsupportedError, analog_activations,
                   as_outputs, describe_counts)


class SpikingJellyNet(PeerNet):
    """A SpikingJelly ``ann2snn`` graph module run in its multi-step mode, ``chunk`` steps
    per call (``[K, B, C, H, W]``; the recipes adapt the graph to it), the neurons keeping
    their state between calls until ``functional.reset_net``.  The numbers are those of
    its single-step mode (tested), in less time."""

    def __init__(self, net: nn.Module, chunk: int = 8, delay_start: int = 0):
        from spikingjelly.activation_based import functional
        super().__init__(net)
        self.chunk = max(1, int(chunk))
        self.delay_start = max(0, int(delay_start))
        functional.set_step_mode(self.net, 'm')

    def reset(self) -> None:
        from spikingjelly.activation_based import functional
        functional.reset_net(self.net)

    def run(self, x: Tensor, steps: int) -> List[Tensor]:
        sums, done = None, 0
        while done < steps:
            K = min(self.chunk, steps - done)
            outs = [o.sum(0) for o in as_outputs(self.net(x.unsqueeze(0).expand(K, *x.shape)))]
            sums = outs if sums is None else [s + o for s, o in zip(sums, outs)]
            done += K
        return sums

    def start_at(self, T: int) -> int:
        """The first step read out at ``T``: ``delay_start`` clamped to leave readout steps,
        as ``estimate_delay_start(..., time_steps=T)`` clamps it."""
        if not self.delay_start:
            return 0
        try:
            from spikingjelly.activation_based.ann2snn.delay import _MIN_READOUT_STEPS as m
        except ImportError:
            m = 1
        if T < self.delay_start + m:
            return max(T - m - 1, 0)
        return min(self.delay_start, T - 1)

    @torch.no_grad()
    def simulate_prefixes(self, x: Tensor, T_list: Sequence[int],
                          chunk_size: Optional[int] = None) -> Dict[int, Tuple[Tensor, ...]]:
        """As :meth:`PeerNet.simulate_prefixes`, each T averaging the steps from
        :meth:`start_at` (T) on: one run, the running sums kept at every start and T."""
        if not self.delay_start:
            return super().simulate_prefixes(x, T_list, chunk_size)
        T_list = sorted({int(t) for t in T_list})
        if not T_list or T_list[0] < 1:
            raise ValueError(f'T must be positive integers, got {list(T_list)}')
        points = sorted(set(T_list) | {self.start_at(T) for T in T_list} - {0})
        self.reset()
        acc, at, done = None, {}, 0
        for p in points:
            sums = self.run(x, p - done)
            acc = sums if acc is None else [a + s for a, s in zip(acc, sums)]
            at[p], done = acc, p
        self.reset()
        out = {}
        for T in T_list:
            s0 = self.start_at(T)
            out[T] = tuple((a - (at[s0][i] if s0 else 0)) / (T - s0)
                           for i, a in enumerate(at[T]))
        return out


@PEERS.register_module('spikingjelly')
class SpikingJellyPeer(Peer):
    """SpikingJelly 2.0's ``ann2snn`` (see module docstring).

    Args:
        recipe: ``'rate'`` (``RateCodingRecipe``) or ``'ltb'``
            (``LocalThresholdBalancingRecipe``).
        mode: the rate recipe's normalisation: ``'max'`` or a percentile ``'99.9%'``.
        channel_wise: the rate recipe's per-channel thresholds (default: one per layer,
            the recipe's default).
        momentum: the rate recipe's running-scale momentum (its default 0.1).
        chunk: time steps per call of the multi-step graph (memory: ``chunk`` x the
            ANN's activations).
    """

    library = 'spikingjelly'

    def __init__(self, recipe: str = 'rate', mode: str = 'max', channel_wise: bool = False,
                 momentum: float = 0.1, chunk: int = 8, updates: Optional[int] = None,
                 delay_start='none'):
        if recipe not in ('rate', 'ltb'):
            raise ValueError(f"SpikingJelly recipe must be 'rate' or 'ltb', got {recipe!r}")
        if not (delay_start in ('none', 'auto') or
                (isinstance(delay_start, int) and delay_start >= 0)):
            raise ValueError(f"delay_start must be 'none', 'auto' or a step >= 0, "
                             f"got {delay_start!r}")
        self.recipe, self.mode = recipe, mode
        self.channel_wise, self.momentum = bool(channel_wise), float(momentum)
        self.chunk = int(chunk)
        self.updates = None if updates is None else int(updates)
        self.delay_start = delay_start

    def describe(self) -> str:
        extra = ''
        if self.updates:
            extra += f'; {self.updates} calibration batches'
        if self.delay_start != 'none':
            extra += f'; readout from delay_start={self.delay_start}'
        if self.recipe == 'ltb':
            return 'LocalThresholdBalancingRecipe()' + extra
        cw = ', channel_wise=True' if self.channel_wise else ''
        return f"RateCodingRecipe(mode='{self.mode}'{cw})" + extra

    def _calibration(self, batches: Sequence[Tensor]) -> list:
        """The calibration batches, cycled to ``updates`` of them when set."""
        batches = list(batches)
        if not self.updates:
            return batches
        return [batches[i % len(batches)] for i in range(self.updates)]

    def _recipe(self, batches: Sequence[Tensor]):
        from spikingjelly.activation_based import ann2snn
        batches = self._calibration(batches)
        if self.recipe == 'ltb':
            return ann2snn.LocalThresholdBalancingRecipe(dataloader=batches)
        return ann2snn.RateCodingRecipe(dataloader=list(batches), mode=self.mode,
                                        momentum=self.momentum,
                                        channel_wise=self.channel_wise)

    def convert(self, ann: nn.Module, batches: Sequence[Tensor]) -> SpikingJellyNet:
        import copy

        from spikingjelly.activation_based import ann2snn
        ann = copy.deepcopy(ann)   # the detector's own backbone stays untouched
        ann.eval()                 # (mmdet's ResNet.train() returns None)
        snn = ann2snn.Converter(recipe=self._recipe(batches), device='cpu').convert(ann)
        left = analog_activations(snn)
        if left:
            raise PeerUnsupportedError(
                f'SpikingJelly {self.describe().split("(")[0]} replaces nn.ReLU only; it '
                f'left {describe_counts(left)} analog (a hybrid network, not an SNN)')
        snn.eval()
        start = self.delay_start
        if start == 'auto':    # SpikingJelly's own estimate, as its LTB example reads out
            from spikingjelly.activation_based import ann2snn as a2s, functional
            functional.set_step_mode(snn, 's')
            # the raw estimate (clamped per T in SpikingJellyNet.start_at)
            start = int(a2s.estimate_delay_start(snn, list(batches)[:1], 'cpu', 1 << 20))
            functional.reset_net(snn)
        net = SpikingJellyNet(snn, self.chunk, 0 if start == 'none' else int(start))
        return net


class SpikingJellyIF(nn.Module):
    """One IF site run by SpikingJelly's multi-step ``IFNode`` (soft reset), emitting
    ``theta * spike`` like :class:`~snn_det.neurons.IFNeuron`, from ``v(0)``."""

    def __init__(self, ours):
        super().__init__()
        from spikingjelly.activation_based import neuron
        theta = ours.threshold.reshape(-1)
        if theta.numel() != 1:
            raise ValueError('SpikingJelly IFNode takes one scalar threshold per layer')
        self.theta = float(theta)
        self.v0 = ours.v0.clone()
        self.node = neuron.IFNode(v_threshold=self.theta, v_reset=None, step_mode='m')
        self.fresh = True

    def reset(self):
        self.node.reset()
        self.fresh = True

    def forward(self, x):
        if self.fresh:    # v(0) in the layout of the input's steps, as our neurons keep it
            from ..neurons.if_neuron import step_format
            self.node.v = self.v0.to(x.dtype).expand_as(x[0]).clone(
                memory_format=step_format(x[0]))
            self.fresh = False
        return self.node(x) * self.theta


def spikingjelly_net(net) -> Optional[nn.Module]:
    """A copy of ``net`` (a converted ``SpikingNet``) with every IF neuron replaced by
    :class:`SpikingJellyIF`; ``None`` if a site is signed (not expressible with
    SpikingJelly's IFNode)."""
    from ..analysis.neurons_free import with_neurons
    if any(n.signed for n in net.neurons.values()):
        return None
    return with_neurons(net, SpikingJellyIF)
