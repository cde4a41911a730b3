"""Collect one site's activations from the ANN and the SNN (Algo. 2, lines 4-6).

Forward passes stop right after the site of interest (:class:`StopForward`).
``x`` is an image batch (run from the image) or a
:class:`~snn_det.calibration.frontier.Frontier` (run from the segment it has
reached), so calibrating layer l costs the forward of its own segment only.
"""
from typing import Dict, Optional

import torch
from torch import Tensor

from .frontier import Frontier
from .recorders import SiteRecorder
from .recorders import ann_site as _ann_site


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
    rec = SiteRecorder(site, owner, keep_steps, keys)
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
    if isinstance(x, Frontier):
        x, start = x.ann, x.segment
    return _ann_site(graph, x, site, acts, start)
