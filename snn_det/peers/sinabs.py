"""sinabs 3.1 as a peer: ``sinabs.from_model``.

``from_model`` walks the module tree and replaces every ``nn.ReLU`` module by an
``IAFSqueeze`` layer (threshold 1, ``MultiSpike``: as many spikes per step as whole
thresholds the membrane holds, ``MembraneSubtract`` reset, membrane floor -1), leaving
every other module as it is; it does no weight normalisation (multi-spike neurons need
none).  The network is then run in sinabs' layout, time folded into the batch
(``[B*K, C, H, W]``, batch-major), ``K`` steps per call, the layers keeping their state
between calls until ``sinabs.reset_states``.

Module replacement has two blind spots, which sinabs does not report; the conversion is
refused with :class:`~.base.PeerUnsupportedError` instead of simulating something else:

* an activation other than ``nn.ReLU`` (Darknet's ``LeakyReLU``) stays analog;
* one ``nn.ReLU`` module called at several places of the forward (mmdet's
  ``BasicBlock``/``Bottleneck`` call ``self.relu`` after each convolution and after the
  residual sum) becomes one stateful IAF layer whose membrane all those sites share.
"""
import copy
from typing import List, Sequence

import torch
from torch import Tensor, nn

from .base import (PEERS, Peer, PeerNet, PeerUnsupportedError, analog_activations,
                   as_outputs, describe_counts)


def relu_call_counts(ann: nn.Module, x: Tensor) -> dict:
    """``{module name: calls}`` of every ``nn.ReLU`` module during one forward of ``x``."""
    counts, handles = {}, []
    for name, m in ann.named_modules():
        if type(m) is nn.ReLU:
            counts[name] = 0

            def hook(mod, inp, out, name=name):
                counts[name] += 1
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            ann(x)
    finally:
        for h in handles:
            h.remove()
    return counts


class SinabsNet(PeerNet):
    """A ``from_model`` spiking model fed ``K`` steps per call (``chunk``)."""

    def __init__(self, net: nn.Module, chunk: int = 8):
        super().__init__(net)
        self.chunk = max(1, int(chunk))

    def reset(self) -> None:
        import sinabs
        sinabs.reset_states(self.net)

    def _set_steps(self, K: int) -> None:
        import sinabs.layers as sl
        for m in self.net.modules():
            if isinstance(m, sl.SqueezeMixin):
                m.num_timesteps, m.batch_size = K, -1

    def run(self, x: Tensor, steps: int) -> List[Tensor]:
        B, sums, done = x.shape[0], None, 0
        while done < steps:
            K = min(self.chunk, steps - done)
            self._set_steps(K)
            xs = x.unsqueeze(1).expand(B, K, *x.shape[1:]).reshape(B * K, *x.shape[1:])
            outs = [o.reshape(B, K, *o.shape[1:]).sum(1) for o in as_outputs(self.net(xs))]
            sums = outs if sums is None else [s + o for s, o in zip(sums, outs)]
            done += K
        return sums


@PEERS.register_module('sinabs')
class SinabsPeer(Peer):
    """``sinabs.from_model`` with its defaults (see module docstring).

    Args:
        chunk: time steps per call of the spiking model (memory: ``chunk`` x the ANN's
            activations).
    """

    library = 'sinabs'

    def __init__(self, chunk: int = 8):
        self.chunk = int(chunk)

    def describe(self) -> str:
        return 'sinabs.from_model()'

    def convert(self, ann: nn.Module, batches: Sequence[Tensor]) -> SinabsNet:
        import sinabs
        ann = copy.deepcopy(ann)   # the detector's own backbone stays untouched
        ann.eval()                 # (mmdet's ResNet.train() returns None)
        left = {k: v for k, v in analog_activations(ann).items() if k != 'ReLU'}
        if left:
            raise PeerUnsupportedError(
                f'sinabs.from_model replaces nn.ReLU modules only; {describe_counts(left)} '
                'would stay analog (a hybrid network, not an SNN)')
        shared = {k: v for k, v in relu_call_counts(ann, batches[0][:1]).items() if v > 1}
        if shared:
            name, calls = next(iter(shared.items()))
            raise PeerUnsupportedError(
                f'sinabs.from_model replaces modules, and {len(shared)} nn.ReLU modules are '
                f'called at several sites (e.g. {name}: {calls}); each would be one IAF layer '
                'whose membrane those sites share')
        net = sinabs.from_model(ann, num_timesteps=self.chunk).spiking_model
        net.eval()
        return SinabsNet(net, self.chunk)
