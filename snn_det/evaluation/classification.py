"""Top-1 accuracy per image, for bootstrap intervals of a classifier's accuracy.

A classifier's top-1 accuracy on a set of images is the mean of each image's
0/1 correctness, so a bootstrap resample (a multiplicity per image, see
:func:`~snn_det.evaluation.bootstrap.resample_counts`) re-scores it as the
count-weighted mean; with every count 1 it equals mmpretrain's ``Accuracy``
(``topk=1``).  The intervals and the paired SNN/ANN ratios then come from
:func:`~snn_det.evaluation.bootstrap.bootstrap_intervals`, as for COCO AP.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class ClassificationEvaluation:
    """Per-image top-1 correctness of one classifier (``img_ids`` sorted, as the
    detection evaluations are; two evaluations are paired when their ids are equal)."""
    img_ids: Tuple[int, ...]
    correct: np.ndarray

    #: the metrics :meth:`scores` returns, in its columns
    METRICS = ('top1',)

    @property
    def num_images(self) -> int:
        return len(self.img_ids)

    @classmethod
    def from_predictions(cls, img_ids: Sequence[int], predicted: Sequence[int],
                         labels: Sequence[int]) -> 'ClassificationEvaluation':
        """From each image's id, predicted class and true class (any order)."""
        ids = np.asarray(img_ids, dtype=np.int64)
        if len(set(ids.tolist())) != len(ids):
            raise ValueError('an image id occurs twice: one evaluation per image')
        order = np.argsort(ids, kind='stable')
        correct = np.asarray(predicted)[order] == np.asarray(labels)[order]
        return cls(tuple(int(i) for i in ids[order]), correct.astype(bool))

    def scores(self, counts: Optional[np.ndarray] = None) -> np.ndarray:
        """``(B, 1)``: top-1 accuracy of each resample (``counts=None``: every image once)."""
        if counts is None:
            return np.array([[self.correct.mean()]])
        counts = np.asarray(counts, dtype=np.float64)
        return (counts @ self.correct.astype(np.float64) / counts.sum(axis=1))[:, None]
