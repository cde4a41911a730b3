"""Peers: the same backbones converted by other libraries' own ANN-to-SNN recipes
(SpikingJelly 2.0's ``ann2snn``, sinabs' ``from_model``), run inside the same detector
as snn-det's conversions (``configs/benchmarks/peers.py``, ``docs/peers.md``).

The libraries are benchmark dependencies (``requirements/benchmarks.txt``): they are
imported only when a peer converts or runs, never by importing snn_det.
"""
from .base import (PEERS, Peer, PeerNet, PeerUnsupportedError, analog_activations,
                   build_peer, one_line)

__all__ = ['PEERS', 'Peer', 'PeerNet', 'PeerUnsupportedError', 'analog_activations',
           'build_peer', 'one_line']
