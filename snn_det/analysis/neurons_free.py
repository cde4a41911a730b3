"""What a spiking net costs without its neurons: the floor below any neuron code.

A converted network spends its time in two kinds of work: the neurons (integrate,
fire, reset) and everything else (BN-folded convolutions on the spike trains,
residual additions, pooling, the readout).  :func:`free_neuron_net` copies a
:class:`~snn_det.conversion.spiking_net.SpikingNet` with every neuron replaced by
:class:`FreeNeuron`, whose input current passes straight through; that copy runs
only the second kind, so its time is what no neuron implementation on the same
convolutions can go below.  The benchmarks report it next to the real net's:

* ``tools/speed_benchmark.py``: the neurons-free simulation against T x ANN and as
  the bound of the SpikingJelly throughput ratio;
* ``tools/scale_benchmark.py`` (``kind='bound'``): at 800x1333, the lower bound of
  LCP's two passes per layer (seed 001 Algo. 2: the error is measured at the old
  bias, then the frontier moves on with the corrected one), 2 x this time.

With free neurons every step sees the same analog input, so the net computes the
BN-folded ANN with its activations removed (tested); the numbers it produces are
not a conversion's, only its time is of interest.
"""
import copy

from torch import Tensor, nn


def with_neurons(net, make):
    """A copy of ``net`` with each neuron ``n`` replaced by ``make(n)``."""
    out = copy.deepcopy(net)
    for key in list(out.neurons.keys()):
        out.neurons[key] = make(net.neurons[key])
    return out


class FreeNeuron(nn.Module):
    """A site whose neuron costs nothing: its input current passes through unchanged (the
    first site's constant input, one step expanded over K, is copied out as any neuron
    writes its K steps)."""

    def reset(self) -> None:
        pass

    def forward(self, x: Tensor) -> Tensor:
        return x.contiguous() if x.stride(0) == 0 else x


def free_neuron_net(net):
    """A copy of ``net`` with every neuron replaced by :class:`FreeNeuron`."""
    return with_neurons(net, lambda _: FreeNeuron())
