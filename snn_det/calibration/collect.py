"""Collect one site's activations from the ANN and the SNN (Algo. 2, lines 4-6).

Forward passes stop right after the site of interest (:class:`StopForward`).
``x`` is an image batch (run from the image) or a
:class:`~snn_det.calibration.frontier.Frontier` (run from the segment it has
reached), so calibrating layer l costs the forward of its own segment only.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor

from ..conversion.ops import AnnOps, StopForward, sum_over_time
from .frontier import Frontier


class _SiteRecorder:
    """Sums over time of a site's input/output and of its owner conv's input."""

    def __init__(self, site: str, owner: Optional[str], keep_steps: bool = False,
                 keys=('conv_in', 'site_in', 'site_out')):
        self.site, self.owner, self.keep_steps = site, owner, keep_steps
        self.keys = frozenset(keys)
        # without site inputs to keep, neurons may fire over their currents (SnnOps.act)
        self.reads_site_in = 'site_in' in self.keys
        self.sums: Dict[str, Tensor] = {}
        self.analog: Dict[str, Tensor] = {}
        self.steps: Dict[str, List[Tensor]] = {}

    def _add(self, key: str, x: Tensor, steps: Optional[int]) -> None:
        x = x.detach()
        if steps is None:                      # analog, constant over time
            self.analog[key] = x
            return
        if self.keep_steps:
            self.steps.setdefault(key, []).append(x.reshape(steps, -1, *x.shape[1:]))
        s = sum_over_time(x, steps)
        if key in self.sums:     # the recorder's own tensor: added in place (no new pages)
            self.sums[key].add_(s)
        else:
            self.sums[key] = s

    def __call__(self, kind: str, name: str, x: Tensor, steps: Optional[int]) -> None:
        if name != (self.owner if kind == 'conv_in' else self.site):
            return
        if kind in self.keys:
            self._add(kind, x, steps)
        if kind == 'site_out':
            raise StopForward

    def result(self, T: int) -> Dict[str, Tensor]:
        out = {k: v / T for k, v in self.sums.items()}
        out.update(self.analog)
        for k, seqs in self.steps.items():
            out[k + '_seq'] = torch.cat(seqs, 0)
        return out


@torch.no_grad()
def snn_site(net, x: Tensor, site: str, T: int, chunk_size: Optional[int] = None,
             keep_steps: bool = False,
             keys=('conv_in', 'site_in', 'site_out'), rois=None) -> Dict[str, Tensor]:
    """Time averages at ``site`` of the SNN: ``site_out`` (s-bar), ``site_in`` (z-bar)
    and ``conv_in`` (the owner convolution's input), optionally per step; ``keys``
    names the ones to sum (each is a pass over a T-step tensor: LCP needs only s-bar).
    ``rois``: a two-stage RoI head's fixed proposals when run from the image (a
    frontier past the barrier carries its own, the ANN's)."""
    owner = net.graph.site(site).owner
    rec = _SiteRecorder(site, owner, keep_steps, keys)
    if isinstance(x, Frontier):
        net.simulate(x.image if x.segment == 0 else None, T, chunk_size, recorder=rec,
                     start=x.segment, inputs=x.snn)
    else:
        net.simulate(x, T, chunk_size, recorder=rec, rois=rois)
    return rec.result(T)


@torch.no_grad()
def ann_site(graph, x: Tensor, site: str, acts=None, start: int = 0) -> Dict[str, Tensor]:
    """The ANN's input (``site_in``) and output (``site_out``, the target x) at ``site``,
    from the image, a :class:`Frontier`, or the input ``x`` of segment ``start``."""
    got = {}

    def rec(kind, name, t, steps):
        if name == site and kind in ('site_in', 'site_out'):
            got[kind] = t.detach()
            if kind == 'site_out':
                raise StopForward

    if isinstance(x, Frontier):
        x, start = x.ann, x.segment
    try:
        graph.forward(x, AnnOps(graph, acts, recorder=rec), start)
    except StopForward:
        pass
    return got
