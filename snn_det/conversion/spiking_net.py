"""The spiking network of one backbone at one number of time steps T.

It holds what conversion produced for that T: BN-folded convolutions (their
biases possibly calibrated, their weights possibly calibrated) and one IF neuron
per activation site (threshold, initial potential).  ``simulate`` runs T steps
in time chunks: stateless layers see ``[K*B, C, H, W]`` batches (time folded
into the batch), neurons carry their membranes from chunk to chunk, so peak
memory is bounded by the chunk length K, not by T.  The readout of each stage
in ``out_indices`` is its time-averaged output (rate x threshold).
"""
from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..neurons import IFNeuron
from ..registry import NEURONS, get_registered
from .fold_bn import fold_conv_bn
from .graphs import BackboneGraph
from ..utils.memory import check_simulation_fits, check_stash_fits
from .ops import AnnOps, BiasAfterConv2d, SnnOps, StopForward, sum_over_time


def site_key(path: str) -> str:
    """Module-dict key of a dotted path (``layer1.0.conv1`` -> ``layer1_0_conv1``; a call
    of a shared module ``bbox_head.cls_convs.0.conv@2`` -> ``bbox_head_cls_convs_0_conv_2``)."""
    return path.replace('.', '_').replace('@', '_')


#: buffer of a net whose ReLU sites have signed neurons (``relu_neuron='signed'``)
SIGNED_RELU_KEY = 'signed_relu'


class SpikingNet(nn.Module):
    """Folded convolutions + neurons for one T; executes a :class:`BackboneGraph`."""

    def __init__(self, graph: BackboneGraph, T: int, channel_wise: bool = True,
                 rounding: bool = True, fold: bool = True, relu_neuron: str = 'if'):
        super().__init__()
        if int(T) < 1:
            raise ValueError(f'T must be a positive number of time steps, got {T}')
        self.graph = graph
        self.register_buffer('T', torch.tensor(int(T)))
        self.convs = nn.ModuleDict()
        for path, unit in graph.units.items():
            if fold:
                conv = fold_conv_bn(unit.conv, unit.norm)
            else:   # placeholder with the right shapes, filled by load_state_dict
                c = unit.conv
                conv = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride,
                                 c.padding, c.dilation, c.groups, bias=True)
            self.convs[site_key(path)] = BiasAfterConv2d.of(conv)
        self.neurons = nn.ModuleDict()
        for site in graph.sites:
            # Leaky-ReLU sites take signed neurons (seed 003 Eq. 22); ReLU sites the
            # registered kind ``relu_neuron`` (snn_det.registry.NEURONS)
            kind = 'signed' if site.signed else relu_neuron
            build = get_registered(NEURONS, kind, 'neuron')
            self.neurons[site_key(site.name)] = build(site, channel_wise, rounding)
        if relu_neuron == 'signed':     # in checkpoints: refused by a config of IF neurons
            self.register_buffer(SIGNED_RELU_KEY, torch.tensor(1))
        self.requires_grad_(False)

    key = staticmethod(site_key)

    def neuron(self, site: str) -> IFNeuron:
        return self.neurons[site_key(site)]

    def conv(self, path: str) -> nn.Conv2d:
        return self.convs[site_key(path)]

    @property
    def num_steps(self) -> int:
        return int(self.T)

    def reset(self) -> None:
        for n in self.neurons.values():
            n.reset()

    def simulate(self, x: Tensor, T: Optional[int] = None, chunk_size: Optional[int] = None,
                 recorder: Optional[Callable] = None, start: int = 0,
                 inputs: Optional[List[Tensor]] = None, rois: Optional[Tensor] = None,
                 stash: Optional[Callable] = None) -> tuple:
        """Run T steps on the analog input ``x`` and return time-averaged stage outputs.

        ``chunk_size`` steps are folded into the batch at once (default: all T).
        A ``recorder`` may stop each chunk early with :class:`StopForward`; then
        the returned tuple is empty.  With ``start`` > 0 the run begins at that
        graph segment from ``inputs``, its per-chunk input spike trains as returned
        by :meth:`advance` (``x`` is then unused); stage outputs before it are absent.
        The run keeps the memory layout of ``x``: a channels-last image gives channels-last
        convolutions and spike trains (faster on CPUs, not bit-identical to the default).
        A graph with a barrier (a two-stage detector) runs in two phases; ``rois`` and
        ``stash`` are as in :meth:`iter_chunks`.
        """
        T = self._check_T(T)
        acc, stopped = None, False
        for steps, outs in self.iter_chunks(x, T, chunk_size, recorder, start, None,
                                            inputs, rois=rois, stash=stash):
            if outs is None:      # stopped by the recorder; it still sees every chunk
                stopped = True
                continue
            sums = [sum_over_time(o, steps) for o in outs]
            acc = sums if acc is None else [a + s for a, s in zip(acc, sums)]
        return tuple() if stopped or acc is None else tuple(a / T for a in acc)

    @torch.no_grad()
    def simulate_prefixes(self, x: Tensor, T_list, chunk_size: Optional[int] = None) -> dict:
        """One simulation to ``max(T_list)`` steps, read out at every ``T`` of the list:
        ``{T: stage outputs averaged over the first T steps}``.

        The network is causal, so the first T steps of a longer run are the run of T
        steps.  Time chunks are cut at every readout T as well as every ``chunk_size``
        steps; where ``chunk_size`` divides every T, the chunks, and so every sum, are
        those of separate runs (same numbers bit for bit), else equal up to the float
        summation order.
        """
        if getattr(self.graph, 'barrier', None) is not None:
            raise ValueError('a two-stage spiking scope reads each T out of its own run: its '
                             'RoI head needs the proposals of that T first')
        T_list = sorted({self._check_T(t) for t in T_list})
        T_max = T_list[-1]
        spans = self._spans(T_max, chunk_size, T_list)
        acc, out, done = None, {}, 0
        for steps, outs in self.iter_chunks(x, T_max, chunk_size, spans=spans):
            sums = [sum_over_time(o, steps) for o in outs]
            acc = sums if acc is None else [a + s for a, s in zip(acc, sums)]
            done += steps
            if done in T_list:
                out[done] = tuple(a / done for a in acc)
        return out

    @staticmethod
    def _spans(T: int, chunk_size, cuts=()) -> List[int]:
        """Chunk lengths of a T-step run: every ``chunk_size`` steps and at each of ``cuts``."""
        chunk = T if not chunk_size else max(1, min(int(chunk_size), T))
        bounds = sorted(set(range(chunk, T, chunk)) | {c for c in cuts if 0 < c < T} | {T})
        return [b - a for a, b in zip([0] + bounds[:-1], bounds)]

    @torch.no_grad()
    def advance(self, x: Optional[Tensor], T: int, chunk_size: Optional[int], start: int,
                stop: int, inputs: Optional[List[Tensor]] = None) -> List[Tensor]:
        """The per-chunk spike input of segment ``stop`` (time folded, ``[K*B, C, H, W]``),
        from the image ``x`` (``start`` = 0) or from segment ``start``'s ``inputs``."""
        return [out for _, out in self.iter_chunks(x, self._check_T(T), chunk_size, None,
                                                   start, stop, inputs)]

    @torch.no_grad()
    def site_elements(self, x: Tensor) -> int:
        """Elements per time step of the largest site input for the input ``x``.  Site
        sizes scale with the image area, so the ratio is measured once (an ANN pass on
        one image) and reused for every input size."""
        ratio = getattr(self, '_site_ratio', None)
        if ratio is None:
            sizes = []

            def rec(kind, name, t, steps):
                if kind == 'site_in':
                    sizes.append(t[:1].numel())
            self.graph.forward(x[:1], AnnOps(self.graph, recorder=rec))
            ratio = self._site_ratio = max(sizes, default=0) / float(x.shape[-2] * x.shape[-1])
        return int(ratio * x.shape[0] * x.shape[-2] * x.shape[-1])

    def _check_T(self, T) -> int:
        T = self.num_steps if T is None else int(T)
        if T < 1:
            raise ValueError(f'T must be a positive number of time steps, got {T}')
        return T

    def iter_chunks(self, x, T: int, chunk_size, recorder=None, start: int = 0, stop=None,
                    inputs=None, spans: Optional[List[int]] = None,
                    rois: Optional[Tensor] = None, stash: Optional[Callable] = None,
                    currents: Optional[Callable] = None):
        """Yield ``(steps, graph output)`` per time chunk (``None`` once a recorder stopped
        it), neurons carrying their state across chunks and reset before and after.
        ``inputs`` (from segment ``start`` > 0) is any sequence of per-chunk tensors, e.g.
        a calibration frontier's spike trains decoded on access.  ``spans`` (chunk
        lengths summing to T) overrides the chunking.  ``currents(c)`` gives chunk ``c``'s
        kept convolution products (:class:`~snn_det.runtime.currents.ChunkCurrents`;
        not across a barrier).

        A graph with a ``barrier`` segment (a two-stage detector,
        :mod:`~snn_det.conversion.graphs.two_stage`) needs, to run it, ``rois``: given,
        in the inputs, or else from the readout of a first phase: every chunk up to the
        barrier, whose states (the backbone's spike trains) are kept, by ``stash(state)``
        returning a function that gives the state back (default: as they are), for the
        second phase from the barrier."""
        barrier = getattr(self.graph, 'barrier', None)
        end = len(self.graph.segments) if stop is None else stop
        if barrier is not None and start <= barrier < end:
            if start == barrier and rois is None and inputs is not None and len(inputs) \
                    and 'rois' in inputs[0]:
                pass                               # past the barrier already
            else:
                yield from self._iter_two_phase(x, T, chunk_size, recorder, start, stop,
                                                inputs, spans, rois, stash)
                return
        yield from self._iter_chunks(x, T, chunk_size, recorder, start, stop, inputs, spans,
                                     rois if start == barrier else None, currents)

    def _iter_two_phase(self, x, T, chunk_size, recorder, start, stop, inputs, spans, rois,
                        stash):
        """:meth:`iter_chunks` across the barrier (see there)."""
        barrier = self.graph.barrier
        spans = spans or self._spans(T, chunk_size)
        names = self.graph.barrier_readout
        kept, sums, stopped, done = [], {}, False, 0
        stash = stash or (lambda state: (lambda: state))
        for steps, state in self._iter_chunks(x, T, chunk_size, recorder, start, barrier,
                                              inputs, spans):
            if state is None:          # a recorder stopped it before the barrier
                stopped = True
                yield steps, None
                continue
            state = dict(state)
            for n in names:
                t = state.pop(n)
                s = sum_over_time(t, steps)
                sums[n] = sums[n] + s if n in sums else s
            state.pop('rois', None)
            kept.append(stash(state))
            done += steps
            cache = getattr(stash, 'cache', None)
            if cache is not None and done < T and x is not None:
                check_stash_fits(cache.ram_bytes, done, T, x.shape[0], x.shape)   # host RAM
        if stopped:
            return
        if rois is None:
            rois = self.graph.barrier_rois({n: v / T for n, v in sums.items()})
        del sums
        yield from self._iter_chunks(None, T, chunk_size, recorder, barrier, stop,
                                     _Restored(kept), spans, rois)

    def _iter_chunks(self, x, T: int, chunk_size, recorder=None, start: int = 0, stop=None,
                     inputs=None, spans: Optional[List[int]] = None,
                     rois: Optional[Tensor] = None, currents: Optional[Callable] = None):
        """One phase of :meth:`iter_chunks`; ``rois`` are added to each chunk's input.
        (The two phases' neurons are disjoint: each phase resets them all.)"""
        spans = spans or self._spans(T, chunk_size)
        if start == 0 and x is not None:     # refuse, naming the fix, what cannot fit
            check_simulation_fits(self.site_elements(x), T, max(spans), x.shape[0], x.shape,
                                  x.device, element_size=x.element_size())
        if inputs is not None and len(inputs) != len(spans):
            raise ValueError(f'{len(inputs)} cached input chunks for {len(spans)} time chunks '
                             f'(T={T}, chunk {chunk_size}): the chunking must not change')
        # unobserved runs from the image compute the analog stem once, not once per chunk
        analog = {} if recorder is None and start == 0 else None
        self.reset()
        try:
            for c, steps in enumerate(spans):
                ops = SnnOps(self, steps, recorder, encoded=start > 0, analog_cache=analog,
                             currents=currents(c) if currents is not None else None)
                inp = x if start == 0 else inputs[c]
                if rois is not None:
                    inp = dict(inp, rois=rois)
                try:
                    out = self.graph.forward(inp, ops, start, stop)
                except StopForward:
                    out = None
                # let go of the chunk's input before the next is asked for: a calibration
                # frontier then decodes the next chunk into its buffer (frontier._DecodedChunks)
                inp = None
                yield steps, out
                out = None     # the state may hold the input passed through (a block's 'x')
        finally:
            self.reset()

    def forward(self, x: Tensor, T: Optional[int] = None, chunk_size: Optional[int] = None):
        return self.simulate(x, T, chunk_size)


class _Restored(Sequence):
    """The states a first phase stashed, given back one chunk at a time."""

    def __init__(self, kept):
        self.kept = kept

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, c: int):
        return self.kept[c]()
