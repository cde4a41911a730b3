"""The call graph of a detector's spiking scope: backbone, then neck, then head.

``scope='backbone'`` is the backbone graph alone (seed 001's setting: the neck
and head run as an ANN on the backbone's rates).  ``'neck'`` and ``'full'``
chain the backbone graph with the neck's (and the head's) part graphs into one
graph, so one spiking net, one time-chunked simulation and one layer-by-layer
calibration cover all of it: spike trains flow from the backbone into the neck
with time folded into the batch, and only the last part's outputs are read out
as time averages (with ``'full'`` the prediction convolutions', seed 003 /
Spiking-YOLO's fully spiking detector).

Between segments the state is a dict of named tensors (``x``: the backbone's
running tensor, with ``y`` inside a residual block; ``c<k>``: its k-th output,
then the part graphs' names).
Segments without a neuron (FPN, the prediction convolutions) are merged into
the next segment (the last: into the one before), so a frontier never stores
the analog currents they produce.
"""
import inspect
from typing import List, Optional, Sequence, Tuple

from ..errors import UnsupportedModuleError
from .base import BackboneGraph

SCOPES = ('backbone', 'neck', 'full')


def check_scope(scope) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return scope


def build_part_graph(module, prefix: str, spiking: bool = False):
    """The part graph of a supported neck or head (a registered ``'part'`` graph,
    :data:`snn_det.registry.GRAPHS`); :class:`UnsupportedModuleError` else.
    ``module`` may be a two-stage detector's ``(neck, rpn_head, roi_head)``.
    ``spiking``: neurons on a linear neck's currents (``FPN``; a neck with neurons of
    its own, e.g. ``YOLOV3Neck``, already passes spikes on)."""
    from . import find_graph, registered_graphs
    if isinstance(module, tuple):        # (neck, rpn_head, roi_head) of a two-stage detector
        from .two_stage import TwoStageHeadsGraph
        return TwoStageHeadsGraph(*module, prefix=prefix)
    cls = find_graph(module, 'part')
    if cls is None:
        known = ', '.join(registered_graphs('part'))
        raise UnsupportedModuleError(prefix, module, f'spiking necks/heads: {known}')
    if spiking and 'spiking' in inspect.signature(cls).parameters:
        return cls(module, prefix, spiking=True)
    return cls(module, prefix)


class DetectorGraph(BackboneGraph):
    """Backbone graph + part graphs, as one graph (see module docstring)."""

    def __init__(self, backbone_graph: BackboneGraph, parts: Sequence, scope: str):
        super().__init__(backbone_graph.backbone)
        self.scope = check_scope(scope)
        self.backbone_graph = backbone_graph
        self.parts = list(parts)
        self.out_indices = backbone_graph.out_indices
        self.units = dict(backbone_graph.units)
        self.sites = list(backbone_graph.sites)
        self._bb_out = {seg: k for k, seg in enumerate(backbone_graph.out_segments)}
        self._out_names = {f'c{k}' for k in self._bb_out.values()}
        n_bb = len(backbone_graph.segments)
        raw: List[Tuple[Optional[int], int, List[str]]] = [
            (None, i, names) for i, names in enumerate(backbone_graph.segments)]
        for p, part in enumerate(self.parts):
            expected = tuple(f'c{k}' for k in range(len(backbone_graph.out_segments))) \
                if p == 0 else self.parts[p - 1].outputs
            if tuple(part.inputs) != tuple(expected)[:len(part.inputs)] or \
                    len(part.inputs) != len(expected):
                raise UnsupportedModuleError(
                    part.prefix, part.module, f'reads {len(part.inputs)} feature maps, the '
                    f'part before it gives {len(expected)}')
            self.units.update(part.units)
            self.sites += part.sites
            raw += [(p, i, names) for i, names in enumerate(part.segments)]
        # merge segments without neurons into the next one (the last: into the one before)
        self.segments, self.plan = [], []        # plan: per segment [(part, local index)]
        pending = []
        for p, i, names in raw:
            pending.append((p, i))
            if names or i < n_bb and p is None:
                self.segments.append(list(names))
                self.plan.append(pending)
                pending = []
        if pending:
            self.plan[-1] += pending
        self.outputs = self.parts[-1].outputs if self.parts else ()
        self.out_segments = ()
        # a two-stage head's barrier (its proposals), as an index of this graph's segments
        self.barrier, self.barrier_readout, self._barrier_part = None, (), None
        for p, part in enumerate(self.parts):
            if getattr(part, 'barrier', None) is None:
                continue
            at = [g for g, plan in enumerate(self.plan) if plan[0] == (p, part.barrier)]
            if not at:
                raise UnsupportedModuleError(part.prefix, part.module,
                                             'its barrier does not start a segment')
            self.barrier, self.barrier_readout = at[0], tuple(part.rpn_names)
            self._barrier_part = part

    @property
    def spiking_parts(self) -> List[str]:
        return ['backbone'] + [c for p in self.parts for c in getattr(p, 'covers', (p.prefix,))]

    def barrier_rois(self, readout: dict):
        """The barrier's ``rois`` from the time-averaged RPN ``readout`` (a dict)."""
        return self._barrier_part.proposals(readout)

    def _cross_barrier(self, state: dict, ops) -> dict:
        """The state at the barrier without ``rois``: only the ANN (one step, nothing
        time-folded) computes them inline; a spiking net reads its RPN out first."""
        if 'rois' not in state:
            if getattr(ops, 'time_folded', False):
                raise RuntimeError('the RoI head of a two-stage scope runs on proposals read '
                                   'out over all T steps: simulate it with SpikingNet')
            state = dict(state, rois=self.barrier_rois(
                {n: state[n] for n in self.barrier_readout}))
            if ops.recorder is not None:
                ops.recorder('rois', 'rois', state['rois'], None)
        return {k: v for k, v in state.items() if k not in self.barrier_readout}

    def run_segment(self, i: int, state, ops):
        bb = self.backbone_graph
        if i == self.barrier:
            state = self._cross_barrier(state, ops)
        for part, local in self.plan[i]:
            if part is None:      # the backbone's own state (tensor or dict) + outputs
                if local == 0:
                    x, outs = state, {}
                else:
                    outs = {k: v for k, v in state.items() if k in self._out_names}
                    own = {k: v for k, v in state.items() if k not in self._out_names}
                    x = own['x'] if list(own) == ['x'] else own
                y = bb.run_segment(local, x, ops)
                state = dict(y) if isinstance(y, dict) else {'x': y}
                state.update(outs)
                if local in self._bb_out:
                    state[f'c{self._bb_out[local]}'] = y
                if local == len(bb.segments) - 1:
                    del state['x']
            else:
                state = self.parts[part].run_segment(local, state, ops)
        return state

    def forward(self, x, ops, start: int = 0, stop: Optional[int] = None):
        """As :meth:`BackboneGraph.forward`; the outputs are the last part's (flat tuple)."""
        end = len(self.segments) if stop is None else stop
        state = x
        for i in range(start, end):
            state = self.run_segment(i, state, ops)
        return state if stop is not None else tuple(state[n] for n in self.outputs)

    def format_outputs(self, outs: Sequence):
        """The flat outputs in the structure of the last part's own forward."""
        return self.parts[-1].format_outputs(outs)
