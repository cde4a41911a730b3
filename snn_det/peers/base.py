"""The common interface of the peers: another library's ANN-to-SNN conversion of a
backbone, simulated as a :class:`PeerNet` that snn-det's ``SpikingBackbone`` runs in
place of its own converted network.

A peer (:class:`Peer`) takes the ANN backbone and the calibration batches and returns a
:class:`PeerNet`; the net steps the peer's own spiking model (its own neurons, its own
thresholds) and reads the backbone's outputs out as snn-det does: the mean over the T
steps of each output's spikes times their scale (the rate decoding of Rueckauer et al.
2017, Eq. 2: ``r = N_spikes / T``, times the layer's normalisation scale).  A network a
peer cannot trace or express raises; :func:`one_line` keeps the message for the table.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.registry import Registry
from torch import Tensor, nn

#: the peers by name: ``PEERS.build(dict(type='spikingjelly', recipe='rate', mode='max'))``
PEERS = Registry('peer')

#: activations that stay analog if a peer leaves them in its network
ANALOG_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU,
                      nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
                      nn.Tanh, nn.Softplus)
ANALOG_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.nn.functional.leaky_relu,
                    torch.nn.functional.gelu, torch.nn.functional.silu, torch.sigmoid,
                    torch.tanh, torch.nn.functional.hardswish}


class PeerUnsupportedError(RuntimeError):
    """A network the peer cannot express although the library itself raises nothing
    (it would silently simulate something else); the message names what."""


def one_line(e: BaseException, limit: int = 240) -> str:
    """``'Type: first line of the message'``, at most ``limit`` characters."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ''
    text = f'{type(e).__name__}: {msg}' if msg else type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + '...'


def analog_activations(net: nn.Module) -> Dict[str, int]:
    """``{activation type: count}`` of the nonlinearities ``net`` still computes in analog
    (modules, and functions of a traced ``torch.fx`` graph)."""
    found: Dict[str, int] = {}
    for m in net.modules():
        if type(m) in ANALOG_ACTIVATIONS:
            found[type(m).__name__] = found.get(type(m).__name__, 0) + 1
    graph = getattr(net, 'graph', None)
    for node in getattr(graph, 'nodes', ()):
        if node.op == 'call_function' and node.target in ANALOG_FUNCTIONS:
            name = getattr(node.target, '__name__', str(node.target))
            found[name] = found.get(name, 0) + 1
    return found


def describe_counts(counts: Dict[str, int]) -> str:
    return ', '.join(f'{n} x{c}' for n, c in sorted(counts.items()))


class PeerNet(nn.Module):
    """A peer's converted backbone, simulated step by step from a reset state.

    Subclasses implement :meth:`reset` and :meth:`run` (``steps`` more time steps of the
    constant input ``x``, continuing the state; returns the sum over those steps of each
    backbone output).  :meth:`simulate` and :meth:`simulate_prefixes` are what
    ``SpikingBackbone`` calls on its converted nets, so the peer runs inside the same
    detector (same neck, head, data and evaluator).  ``num_steps`` is the largest T the
    net is read out at (its key in ``SpikingBackbone.snn``); the conversion itself does
    not depend on T.
    """

    def __init__(self, net: nn.Module, num_steps: int = 1):
        super().__init__()
        self.net = net
        self.num_steps = int(num_steps)

    def reset(self) -> None:
        raise NotImplementedError

    def run(self, x: Tensor, steps: int) -> List[Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def simulate_prefixes(self, x: Tensor, T_list: Sequence[int],
                          chunk_size: Optional[int] = None) -> Dict[int, Tuple[Tensor, ...]]:
        """One run to ``max(T_list)`` steps: ``{T: outputs averaged over the first T}``
        (the net is causal: the first T steps of a longer run are the T-step run)."""
        T_list = sorted({int(t) for t in T_list})
        if not T_list or T_list[0] < 1:
            raise ValueError(f'T must be positive integers, got {list(T_list)}')
        self.reset()
        acc, out, done = None, {}, 0
        for T in T_list:
            sums = self.run(x, T - done)
            acc = sums if acc is None else [a + s for a, s in zip(acc, sums)]
            done = T
            out[T] = tuple(a / T for a in acc)
        self.reset()                    # no state (memory) kept between images
        return out

    def simulate(self, x: Tensor, T: int, chunk_size: Optional[int] = None,
                 stash=None) -> Tuple[Tensor, ...]:
        """The backbone's outputs averaged over ``T`` steps (``stash``: unused, two-stage
        scopes are snn-det's own)."""
        return self.simulate_prefixes(x, [T], chunk_size)[int(T)]


def as_outputs(out) -> List[Tensor]:
    """A backbone's forward output as a list of tensors (mmdet backbones return tuples)."""
    if isinstance(out, Tensor):
        return [out]
    return list(out)


class Peer:
    """A conversion by another library.  ``library`` names the package (its version is
    recorded with the results); :meth:`convert` returns a :class:`PeerNet` or raises the
    library's own error (or :class:`PeerUnsupportedError`)."""

    library = ''

    def version(self) -> str:
        """The installed distribution's version (SpikingJelly has no ``__version__``)."""
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version(self.library)
        except PackageNotFoundError:
            return 'not installed'

    def describe(self) -> str:
        raise NotImplementedError

    def convert(self, ann: nn.Module, batches: Sequence[Tensor]) -> PeerNet:
        raise NotImplementedError


def build_peer(cfg: dict) -> Peer:
    """A peer from its config dict (``type``: a name of :data:`PEERS`)."""
    from . import sinabs, spikingjelly  # noqa: F401  (register)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f"a peer is dict(type=..., ...) with type one of "
                         f"{sorted(PEERS.module_dict)}, got {cfg!r}")
    if cfg['type'] not in PEERS.module_dict:
        raise KeyError(f"unknown peer '{cfg['type']}'; known: {sorted(PEERS.module_dict)}")
    return PEERS.build(dict(cfg))
