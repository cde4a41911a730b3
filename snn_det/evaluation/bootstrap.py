"""95 % bootstrap intervals of COCO AP over the test images, and of AP ratios.

COCO's AP of a detector on a set of images is a function of the images' own
evaluations: ``COCOeval.evaluate()`` matches the detections of each image and
category to its ground truth (``evalImgs``: ``dtScores``, ``dtMatches``,
``dtIgnore``, ``gtIgnore``), and ``COCOeval.accumulate()`` pools them into one
precision/recall curve per IoU threshold and category.  A *percentile
bootstrap* (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
ch. 13) redraws the test set: ``B`` times, draw ``n`` of the ``n`` images with
replacement, recompute AP on that multiset (an image drawn twice counts twice),
and report the 2.5 and 97.5 percentiles of the ``B`` values as the 95 % interval.

:class:`ImageEvaluation` holds what ``accumulate()`` reads, for the area range
``all`` and the largest ``maxDets`` (what ``summarize()`` reports as AP and
AP50); ``evaluate()`` runs once, each resample only re-accumulates, vectorised
over resamples with numpy.  An image drawn ``c`` times adds each of its
detections ``c`` times and its ground truth ``c`` times, so a resample is the
per-image multiplicity vector ``counts`` and the cumulative true/false-positive
sums of COCO's curve become sums weighted by ``counts``.  With ``counts`` all 1
the result equals ``accumulate()`` + ``summarize()`` (the same detection order,
the same float operations).  A resample equals pycocotools run on the
resampled image list in sorted order, except that when one image holds two
detections of one category with exactly the same score, its copies' detections
are ordered copy by copy there and detection by detection here.

Ratios (SNN AP / ANN AP) are *paired*: both models are scored on the same
resampled images (the same ``counts``) and the interval is that of the ``B``
ratios.

Longer than most modules (~370 lines): the per-image record, its vectorised
re-accumulation and the intervals drawn from it share one data layout.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

#: the confidence level of every interval
LEVEL = 0.95
#: resamples drawn by default
DEFAULT_RESAMPLES = 1000
#: at most this many (resample x IoU x detection) values are held at once
_CHUNK_ELEMENTS = 1_000_000


@dataclass(frozen=True)
class CategoryEvaluation:
    """The detections of one category over all images, in ``accumulate()``'s order.

    Attributes:
        image: ``(N,)`` index (into ``ImageEvaluation.img_ids``) of each detection's image.
        tp: ``(T, N)`` bool, the detection is a true positive at IoU threshold ``t``
            (matched and not ignored).
        fp: ``(T, N)`` bool, a false positive (unmatched and not ignored).
        gt: ``(I,)`` int, each image's ground-truth boxes that are not ignored.
    """
    image: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    gt: np.ndarray


@dataclass(frozen=True)
class ImageEvaluation:
    """Per-image COCO evaluation of one detector, ready to re-accumulate for any resample.

    Build it with :meth:`from_cocoeval` (after ``COCOeval.evaluate()``) or
    :func:`evaluate_coco`.  ``img_ids`` are sorted (as ``COCOeval`` sorts them);
    two evaluations are paired when their ``img_ids`` are equal.
    """
    img_ids: Tuple[int, ...]
    cat_ids: Tuple[int, ...]
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    max_dets: int
    categories: Tuple[CategoryEvaluation, ...]

    #: the metrics :meth:`scores` returns, in its columns
    METRICS = ('AP', 'AP50')

    @property
    def num_images(self) -> int:
        return len(self.img_ids)

    def scores(self, counts: Optional[np.ndarray] = None) -> np.ndarray:
        """``(B, 2)``: :meth:`ap` (the columns named by :attr:`METRICS`)."""
        return self.ap(counts)

    @classmethod
    def from_cocoeval(cls, coco_eval, area: str = 'all',
                      max_dets: Optional[int] = None) -> 'ImageEvaluation':
        """Read ``coco_eval.evalImgs`` (``evaluate()`` must have run) for area range
        ``area`` and ``max_dets`` detections per image (default: the largest of
        ``params.maxDets``, what ``summarize()`` reports AP with)."""
        if not getattr(coco_eval, 'evalImgs', None):
            raise ValueError('COCOeval.evaluate() has not run (evalImgs is empty)')
        p = coco_eval._paramsEval
        if area not in p.areaRngLbl:
            raise KeyError(f'area range {area!r} is not one of {p.areaRngLbl}')
        max_dets = int(max_dets or p.maxDets[-1])
        cat_ids = list(p.catIds) if p.useCats else [-1]
        n_img, n_area, a0 = len(p.imgIds), len(p.areaRng), p.areaRngLbl.index(area)
        n_thr = len(p.iouThrs)
        categories = []
        for k in range(len(cat_ids)):
            base = k * n_area * n_img + a0 * n_img
            scores, image, matched, ignored = [], [], [], []
            gt = np.zeros(n_img, dtype=np.int64)
            for i in range(n_img):
                e = coco_eval.evalImgs[base + i]
                if e is None:
                    continue
                s = np.asarray(e['dtScores'][:max_dets], dtype=np.float64)
                scores.append(s)
                image.append(np.full(len(s), i, dtype=np.int64))
                matched.append(np.asarray(e['dtMatches'])[:, :max_dets].reshape(n_thr, -1))
                ignored.append(np.asarray(e['dtIgnore'])[:, :max_dets].reshape(n_thr, -1))
                gt[i] = np.count_nonzero(np.asarray(e['gtIgnore']) == 0)
            if scores:
                s = np.concatenate(scores)
                order = np.argsort(-s, kind='mergesort')   # accumulate()'s order
                dtm = np.concatenate(matched, axis=1)[:, order]
                dtig = np.concatenate(ignored, axis=1)[:, order].astype(bool)
                img = np.concatenate(image)[order]
            else:
                dtm = np.zeros((n_thr, 0))
                dtig = np.zeros((n_thr, 0), dtype=bool)
                img = np.zeros(0, dtype=np.int64)
            categories.append(CategoryEvaluation(
                image=img, tp=np.logical_and(dtm, np.logical_not(dtig)),
                fp=np.logical_and(np.logical_not(dtm), np.logical_not(dtig)), gt=gt))
        return cls(img_ids=tuple(int(i) for i in p.imgIds), cat_ids=tuple(cat_ids),
                   iou_thrs=np.asarray(p.iouThrs, dtype=np.float64),
                   rec_thrs=np.asarray(p.recThrs, dtype=np.float64),
                   max_dets=max_dets, categories=tuple(categories))

    def precision(self, counts: np.ndarray) -> np.ndarray:
        """COCO's interpolated precision ``(B, T, R, K)`` of ``B`` resamples (``counts``:
        ``(B, I)`` multiplicity of each image); -1 where a category has no ground truth
        in a resample, as ``COCOeval.eval['precision'][..., area, maxDet]``."""
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[1] != self.num_images:
            raise ValueError(f'counts must be (resamples, {self.num_images}), '
                             f'got {counts.shape}')
        n_thr, n_rec = len(self.iou_thrs), len(self.rec_thrs)
        out = np.full((counts.shape[0], n_thr, n_rec, len(self.categories)), -1.0)
        weights = counts.astype(np.float64)        # exact: integer sums stay below 2**53
        for k, cat in enumerate(self.categories):
            npig = counts @ cat.gt                        # non-ignored GT per resample
            out[..., k] = _category_precision(cat, weights, npig, self.rec_thrs)
        return out

    def ap(self, counts: Optional[np.ndarray] = None) -> np.ndarray:
        """``(B, 2)``: AP@[.5:.95] and AP50 of each resample (``counts=None``: the images
        once each, i.e. ``COCOeval.stats[0:2]``); NaN where no category has ground truth.

        As ``COCOeval.summarize()``: the mean of the precision entries above -1 over
        IoU thresholds, recall thresholds and categories (AP50: at IoU 0.5 only).
        """
        if counts is None:
            counts = np.ones((1, self.num_images), dtype=np.int64)
        prec = self.precision(counts)
        t50 = np.flatnonzero(np.isclose(self.iou_thrs, 0.5))
        out = np.full((prec.shape[0], 2), np.nan)
        for b in range(prec.shape[0]):
            for j, s in enumerate((prec[b], prec[b, t50])):
                s = s[s > -1]
                if s.size:
                    out[b, j] = np.mean(s)
        return out


def _category_precision(cat: CategoryEvaluation, weights: np.ndarray, npig: np.ndarray,
                        rec_thrs: np.ndarray) -> np.ndarray:
    """``(B, T, R)`` interpolated precision of one category for ``B`` resamples.

    ``accumulate()`` per IoU threshold: cumulative TP/FP sums over the detections
    in descending score order, ``rc = tp / npig``, ``pr = tp / (fp + tp + eps)``,
    ``pr`` made non-increasing from the right, and for each recall threshold ``r``
    the precision at the first detection with ``rc >= r`` (0 if none).  Only the
    true positives matter: ``tp`` grows only there and a false positive never
    raises ``pr``, so the first detection reaching ``r`` and the running maximum
    from the right are both found among them.  At the ``k``-th true positive,
    ``tp`` and ``fp + tp`` of a resample are ``weights @ Q[k]`` and ``weights @ P[k]``,
    with ``Q[k, i]`` / ``P[k, i]`` the true positives / not-ignored detections of
    image ``i`` up to it: one matrix product per IoU threshold, exact in float64.
    ``rc >= r`` is decided in integers, ``tp >= v`` with ``v`` the least integer
    whose ``v / npig >= r`` (float division, as pycocotools).
    """
    n_res, n_img = weights.shape
    n_thr, n_rec = cat.tp.shape[0], len(rec_thrs)
    out = np.zeros((n_res, n_thr, n_rec))
    with np.errstate(divide='ignore', invalid='ignore'):
        need = _least_reaching(npig, rec_thrs)                         # (B, R)
    rows = np.arange(n_res)[:, None]
    for t in range(n_thr):
        pos = np.flatnonzero(cat.tp[t])                                # TP positions
        m = pos.size
        if not m:
            continue                                 # no true positive: precision 0
        tp = np.empty((n_res, m))
        nv = np.empty((n_res, m))
        valid = cat.tp[t] | cat.fp[t]
        step = max(1, _CHUNK_ELEMENTS // n_img)
        for lo in range(0, m, step):
            hi = min(lo + step, m)
            tp[:, lo:hi] = weights @ _prefix_counts(pos, lo, hi, cat.image, cat.tp[t], n_img).T
            nv[:, lo:hi] = weights @ _prefix_counts(pos, lo, hi, cat.image, valid, n_img).T
        pr = tp / (nv + np.spacing(1))
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]       # envelope
        tp = np.rint(tp).astype(np.int64)
        top = int(tp[:, -1].max()) + 2                     # separates the rows' keys
        keys = (tp + rows * top).ravel()
        idx = np.searchsorted(keys, (np.minimum(need, top - 1) + rows * top).ravel(),
                              side='left').reshape(n_res, n_rec) - rows * m
        out[:, t, :] = np.where(idx < m, pr[rows, np.minimum(idx, m - 1)], 0.0)
    out[npig == 0] = -1.0
    return out


def _prefix_counts(pos: np.ndarray, lo: int, hi: int, image: np.ndarray, mask: np.ndarray,
                   n_img: int) -> np.ndarray:
    """``(hi - lo, I)``: row ``k`` counts, per image, the detections ``j <= pos[lo + k]``
    with ``mask[j]``."""
    first = pos[lo - 1] + 1 if lo else 0
    before = np.bincount(image[:first][mask[:first]], minlength=n_img)
    j = np.flatnonzero(mask[first:pos[hi - 1] + 1]) + first
    slot = np.searchsorted(pos[lo:hi], j, side='left')         # the first TP at or after j
    grid = np.bincount(slot * n_img + image[j], minlength=(hi - lo) * n_img)
    return before + np.cumsum(grid.reshape(hi - lo, n_img), axis=0)


def _least_reaching(npig: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """``(b, R)``: the least integer ``v >= 0`` with ``v / npig >= r`` in float64."""
    den = npig.astype(np.float64)[:, None]
    v = np.ceil(rec_thrs[None, :] * den)
    for _ in range(4):                       # the product is off by at most one ulp
        down = (v > 0) & ((v - 1) / den >= rec_thrs)
        up = v / den < rec_thrs
        if not (down.any() or up.any()):
            break
        v = v - down + up
    return np.where(npig[:, None] > 0, v, 0).astype(np.int64)


# -- resampling and intervals -----------------------------------------------------------


def resample_counts(num_images: int, num_resamples: int = DEFAULT_RESAMPLES,
                    seed: int = 0) -> np.ndarray:
    """``(B, I)`` multiplicities of ``B`` draws of ``I`` images with replacement.

    Seeded (``numpy.random.default_rng(seed)``): the same seed and image count give
    the same resamples, so two models evaluated on the same images are paired.
    """
    if num_images < 1 or num_resamples < 1:
        raise ValueError(f'need at least one image and one resample, got {num_images} '
                         f'images and {num_resamples} resamples')
    draws = np.random.default_rng(seed).integers(0, num_images, (num_resamples, num_images))
    flat = draws + np.arange(num_resamples)[:, None] * num_images
    return np.bincount(flat.ravel(), minlength=num_resamples * num_images).reshape(
        num_resamples, num_images)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> Tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of ``samples``
    (NaN ignored; ``(nan, nan)`` when all are NaN)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return float('nan'), float('nan')
    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _check_paired(evaluations: Sequence[ImageEvaluation]) -> None:
    ids = {e.img_ids for e in evaluations}
    if len(ids) > 1:
        raise ValueError('the evaluations are not on the same images; a paired bootstrap '
                         'needs every model scored on one image set')


def bootstrap_intervals(evaluations: Mapping[str, ImageEvaluation],
                        reference: Optional[str] = None,
                        num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                        level: float = LEVEL) -> Dict[str, dict]:
    """Point estimates and percentile intervals of several models on one image set.

    Every model is scored on the same ``num_resamples`` resamples (seeded), so the
    ratio to ``reference`` (e.g. the ANN) is a paired bootstrap.  Returns per name::

        dict(AP=..., AP_ci=[lo, hi], AP50=..., AP50_ci=[lo, hi],
             ratio=AP / AP_reference, ratio_ci=[lo, hi])   # ratio: not for reference

    for detection (:class:`ImageEvaluation`); a classifier's evaluation
    (:class:`~snn_det.evaluation.classification.ClassificationEvaluation`) gives
    ``top1``, ``top1_ci`` and the ratio of top-1.  The ratio is of the first metric.
    All values are fractions (0.52, not 52).
    """
    if not evaluations:
        return {}
    _check_paired(list(evaluations.values()))
    if reference is not None and reference not in evaluations:
        raise KeyError(f'reference {reference!r} is not among {list(evaluations)}')
    first = next(iter(evaluations.values()))
    if len({type(e).METRICS for e in evaluations.values()}) > 1:
        raise ValueError('the evaluations measure different metrics (detection and '
                         'classification): intervals are paired within one kind')
    counts = resample_counts(first.num_images, num_resamples, seed)
    points = {name: e.scores()[0] for name, e in evaluations.items()}
    samples = {name: e.scores(counts) for name, e in evaluations.items()}
    out = {}
    for name, e in evaluations.items():
        p, s = points[name], samples[name]
        out[name] = {}
        for j, metric in enumerate(e.METRICS):
            out[name][metric] = float(p[j])
            out[name][f'{metric}_ci'] = list(percentile_interval(s[:, j], level))
        if reference is not None and name != reference:
            ref_point, ref = points[reference][0], samples[reference][:, 0]
            with np.errstate(divide='ignore', invalid='ignore'):
                ratio = s[:, 0] / ref
            out[name]['ratio'] = float(p[0] / ref_point) if ref_point > 0 else float('nan')
            out[name]['ratio_ci'] = list(percentile_interval(ratio, level))
    return out


# -- running pycocotools ------------------------------------------------------------------


def evaluate_coco(coco_gt, detections: Sequence[dict], img_ids: Optional[Sequence[int]] = None,
                  cat_ids: Optional[Sequence[int]] = None, iou_thrs=None,
                  max_dets: Optional[Sequence[int]] = None) -> ImageEvaluation:
    """Run ``COCOeval(coco_gt, detections, 'bbox').evaluate()`` once, quietly.

    ``detections``: COCO result dicts (``image_id``, ``bbox`` as ``[x, y, w, h]``,
    ``score``, ``category_id``); may be empty.  ``img_ids`` / ``cat_ids`` /
    ``iou_thrs`` / ``max_dets`` set ``COCOeval.params`` (mmdet's ``CocoMetric``
    uses ``max_dets=(100, 300, 1000)``); left out, pycocotools' defaults.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):      # pycocotools prints progress
        if detections:
            coco_dt = coco_gt.loadRes(list(detections))
        else:
            coco_dt = COCO()
            coco_dt.dataset = dict(images=list(coco_gt.dataset.get('images', [])),
                                   categories=list(coco_gt.dataset.get('categories', [])),
                                   annotations=[])
            coco_dt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_dt, 'bbox')
        if img_ids is not None:
            coco_eval.params.imgIds = list(img_ids)
        if cat_ids is not None:
            coco_eval.params.catIds = list(cat_ids)
        if iou_thrs is not None:
            coco_eval.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
        if max_dets is not None:
            coco_eval.params.maxDets = list(max_dets)
        coco_eval.evaluate()
    return ImageEvaluation.from_cocoeval(coco_eval)
