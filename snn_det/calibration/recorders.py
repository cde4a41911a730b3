"""Recorders that read one site's tensors out of a forward pass (seed 001 Algo. 2,
lines 4-6): the SNN's time sums at a site and the ANN's input and output there.

Forward passes stop right after the site of interest (:class:`StopForward`).
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor

from ..conversion.ops import AnnOps, StopForward, sum_over_time

__all__ = ['SiteRecorder', 'ann_site']


class SiteRecorder:
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
def ann_site(graph, x: Tensor, site: str, acts=None, start: int = 0) -> Dict[str, Tensor]:
    """The ANN's input (``site_in``) and output (``site_out``, the target x) at ``site``,
    from the image or the input ``x`` (a tensor or a named state) of segment ``start``."""
    got = {}

    def rec(kind, name, t, steps):
        if name == site and kind in ('site_in', 'site_out'):
            got[kind] = t.detach()
            if kind == 'site_out':
                raise StopForward

    try:
        graph.forward(x, AnnOps(graph, acts, recorder=rec), start)
    except StopForward:
        pass
    return got
