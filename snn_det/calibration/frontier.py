"""Where layer-by-layer calibration has got to on one calibration batch.

Seed 001 Algo. 2 and seed 003 Algorithm 1 calibrate layer l on the outputs of
layers 1..l-1 *as already calibrated*.  Re-running the network from the image
for every layer costs one forward up to each layer, quadratic in depth (and
T-fold for the SNN).  A :class:`Frontier` instead keeps, for one batch, the
ANN's and the SNN's input of the graph segment being calibrated (the SNN's as
its per-chunk spike trains) and moves it forward one segment at a time once the
layers before have been calibrated, so every segment runs once per calibration
step: linear in depth.  The results are the same as from the image (tested);
the memory is one segment boundary per batch, ``T x B x C x H x W``.
"""
from typing import Optional

from torch import Tensor

from ..conversion.ops import AnnOps


class Frontier:
    """One calibration batch and its ANN / SNN tensors at the input of ``segment``."""

    def __init__(self, image: Tensor):
        self.image = image
        self.segment = 0
        self.ann: Tensor = image          # input of ``segment`` in the (QC-)ANN
        self.snn = None                   # per-chunk spike input of ``segment`` (None at 0)
        self._key = None

    @property
    def shape(self):
        return self.image.shape

    def advance(self, graph, net, segment: int, T: int, chunk_size: Optional[int],
                acts=None) -> None:
        """Move to the input of ``segment`` using the network's current parameters."""
        key = (id(net), T, chunk_size)
        if self._key is not None and key != self._key:
            raise ValueError('a Frontier belongs to one spiking net, T and chunking')
        self._key = key
        if segment < self.segment:
            raise ValueError(f'cannot move a calibration frontier back from segment '
                             f'{self.segment} to {segment}')
        if segment == self.segment:
            return
        self.ann = graph.forward(self.ann, AnnOps(graph, acts), self.segment, segment)
        self.snn = net.advance(self.image, T, chunk_size, self.segment, segment, self.snn)
        self.segment = segment
