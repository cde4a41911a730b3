"""Where layer-by-layer calibration has got to on one calibration batch.

Seed 001 Algo. 2 and seed 003 Algorithm 1 calibrate layer l on the outputs of
layers 1..l-1 *as already calibrated*.  Re-running the network from the image
for every layer costs one forward up to each layer, quadratic in depth (and
T-fold for the SNN).  A :class:`Frontier` instead keeps, for one batch, the
ANN's and the SNN's input of the graph segment being calibrated (the SNN's as
its per-chunk spike trains) and moves it forward one segment at a time once the
layers before have been calibrated, so every segment runs once per calibration
step: linear in depth.  The results are the same as from the image (tested).
LCP and ACP/CC take the site's outputs next; the frontier observes them on its way
(:meth:`Frontier.advance` with ``observe``): each new time chunk, still in memory, runs
on to the site, so every boundary is decoded once per calibration step, not twice.  On
that way the site's convolution product may be kept
(:mod:`~snn_det.runtime.currents`), and the next move through the same segment adds
the corrected bias to it instead of convolving again.

Memory: the SNN's boundary is ``T x B x C x H x W`` spikes, kept exactly in
bits (:mod:`~snn_det.runtime.spike_codes`, 1 bit per neuron-step for an IF
site, 2 for a signed one); the ANN's is ``B x C x H x W`` floats.  Both live in
a :class:`~snn_det.runtime.cache.CalibrationCache`, in RAM up to its budget
and in files beyond it, and are decoded one time chunk at a time.
"""
from typing import List, Optional, Sequence

from torch import Tensor

from ..conversion.ops import AnnOps, SnnOps, StopForward
from ..runtime.cache import CalibrationCache
from ..runtime.currents import ChunkCurrents, KeptCurrents
from ..runtime.spike_codes import Encoded, store
from ..runtime.states import CachedImages, DecodedChunks, decode_state, state_nbytes, store_state
from .recorders import SiteRecorder, ann_site

__all__ = ['CachedImages', 'Frontier']


class _LastSiteOut:
    """Recorder keeping the last site output of a forward (a residual term)."""

    reads_site_in = False      # so neurons may fire over their input currents (SnnOps.act)

    def __init__(self):
        self.out = None

    def __call__(self, kind, name, x, steps):
        if kind == 'site_out':
            self.out = x


class Frontier:
    """One calibration batch and its ANN / SNN tensors at the input of ``segment``.

    ``image`` is the batch or its handle in the cache (:class:`CachedImages`); the
    frontier loads it only while it still runs from the image (segment 0).
    ``memory_format=torch.channels_last`` gives the image in that layout, so the
    convolutions after it run channels last, and so do the boundaries kept (they are
    stored and decoded in their own layout)."""

    def __init__(self, image, cache: Optional[CalibrationCache] = None, device=None,
                 memory_format=None):
        self.cache = cache if cache is not None else CalibrationCache()
        self.memory_format = memory_format
        if isinstance(image, Tensor):
            self._image, self.device = image, image.device
        else:                                   # a Stored handle
            self._image, self.device = image, device
        self._shape = tuple(image.shape)
        self.segment = 0
        self._ann: Optional[Encoded] = None     # input of ``segment`` in the (QC-)ANN
        self._snn: Optional[List[Encoded]] = None  # per-chunk spike input (None at 0)
        self._key = None
        self._observed = None                   # (site, key, {'ann', 'snn'}) of advance
        self._kept: Optional[KeptCurrents] = None   # the observed site's products

    @property
    def image(self) -> Tensor:
        x = self._image if isinstance(self._image, Tensor) else self._image.load(self.device)
        if self.memory_format is not None and x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        return x

    @property
    def shape(self):
        return self._shape

    @property
    def ann(self) -> Tensor:
        """The (QC-)ANN's input of ``segment``: a tensor, or a named state of them."""
        if self._ann is None:
            return self.image
        return decode_state(self._ann, self.device)

    @property
    def snn(self) -> Optional[Sequence[Tensor]]:
        """Per-chunk spike inputs of ``segment`` (time folded), decoded chunk by chunk."""
        return None if self._snn is None else DecodedChunks(self._snn, self.device)

    @property
    def nbytes(self) -> int:
        """Bytes this frontier holds in its cache (RAM or disk)."""
        n = state_nbytes(self._ann) if self._ann is not None else 0
        return n + sum(state_nbytes(e) for e in (self._snn or []))

    def take_observed(self, site: str) -> Optional[Tensor]:
        """The error ``e = x - s_bar`` at ``site`` (the ANN's output minus the SNN's
        time-averaged output, seed 001 Eq. 19) as :meth:`advance` observed it on the way
        (``observe=site``), or ``None``; given once, then forgotten."""
        got, self._observed = self._observed, None
        if got is None or got[0] != site or got[1] != self._key:
            return None
        return got[2].decode(self.device)

    def advance(self, graph, net, segment: int, T: int, chunk_size: Optional[int],
                acts=None, observe: Optional[str] = None) -> None:
        """Move to the input of ``segment`` using the network's current parameters.

        ``observe``: a site of ``segment``; each time chunk, once computed, also runs on
        through that segment to the site, in the ANN and the SNN (its neurons stepping
        chunk by chunk as in a separate run from the new input), and the site's error
        ``x - s_bar`` is kept, in the cache like the boundaries (a frontier per batch would
        otherwise hold a site-sized map each until all have moved), for
        :meth:`take_observed`: what LCP / ACP / CC take next
        (:func:`~snn_det.calibration.bias.site_error`), without decoding the new input
        again.  The same numbers as a separate pass (tested)."""
        key = (id(net), T, chunk_size)
        if self._key is not None and key != self._key:
            raise ValueError('a Frontier belongs to one spiking net, T and chunking')
        self._key = key
        self._observed = None
        if segment < self.segment:
            raise ValueError(f'cannot move a calibration frontier back from segment '
                             f'{self.segment} to {segment}')
        if segment == self.segment:
            return
        # the products the observing pass kept for this segment's convolution (currents)
        kept, self._kept = self._kept, None
        ann_in = self.ann
        # a two-stage graph's barrier: the SNN's RoI head is calibrated on the ANN's rois
        barrier = getattr(graph, 'barrier', None)
        crossing = barrier is not None and self.segment < barrier < segment
        arriving = barrier is not None and self.segment < barrier == segment
        if crossing or arriving:       # the rois come with the state: observed separately
            observe = None
        seen = {}

        def rois_rec(kind, name, t, steps):
            if kind == 'rois':
                seen['rois'] = t
        ann = graph.forward(ann_in, AnnOps(graph, acts, recorder=rois_rec if crossing else None),
                            self.segment, segment)
        rois = seen.get('rois')
        if arriving:
            rois = graph.barrier_rois({n: ann[n] for n in graph.barrier_readout})
            ann = dict(ann, rois=rois)
        self._ann = store_state(self.cache, ann, self._ann, ann_in, spikes=False)
        ann_out = ann_site(graph, ann, observe, acts, segment)['site_out'] if observe else None
        del ann, ann_in
        rec = SiteRecorder(observe, None, keys=('site_out',)) if observe else None
        prev, inputs = self._snn, self.snn
        last = _LastSiteOut()
        chunks = []
        image = self.image if self.segment == 0 else None     # unused past segment 0
        n_chunks = len(net._spans(T, chunk_size))
        replay = None
        if kept is not None and not crossing:
            owner = kept.path
            if kept.usable(owner, net.conv(owner), n_chunks):
                replay = kept
        del kept
        keep = None
        if rec is not None:
            owner = graph.site(observe).owner
            if owner is not None and net.key(owner) in net.convs:
                keep = KeptCurrents(owner, net.conv(owner), self.cache, n_chunks)
        # (not enumerate: it would hold the last chunk's output while the next is made)
        for item in net.iter_chunks(image, T, chunk_size, last, self.segment, segment,
                                    inputs, rois=rois if crossing else None,
                                    currents=None if replay is None
                                    else (lambda c: ChunkCurrents(c, replay=replay))):
            c, (steps, out) = len(chunks), item
            del item
            prev_value = inputs[c] if inputs is not None else None
            if arriving:
                out = dict(out, rois=rois)
            chunks.append(store_state(self.cache, out, prev[c] if prev else None,
                                       prev_value, last.out))
            last.out = prev_value = None
            if rec is not None:        # on to the observed site (its neurons keep state)
                try:
                    graph.forward(out, SnnOps(net, steps, rec, encoded=True,
                                              currents=ChunkCurrents(c, keep=keep)),
                                  segment, segment + 1)
                except StopForward:
                    pass
            out = None                 # the input chunk may now be reused
        self._snn = chunks
        self.segment = segment
        self._kept = keep if keep is not None and not keep.refused else None
        if rec is not None:
            e = ann_out - rec.result(T)['site_out']
            del ann_out, rec
            self._observed = (observe, key, store(self.cache, e))
