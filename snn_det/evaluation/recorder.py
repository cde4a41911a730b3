"""Keep the per-image evaluation of a test run for bootstrap intervals.

mmdet's ``CocoMetric`` scores a test run and discards its ``COCOeval``.
:class:`CocoEvaluationRecorder` is a second metric in the same evaluator: it
keeps the predictions it is shown, and after mmengine has gathered them from all
ranks (``compute_metrics`` runs on rank 0, as ``CocoMetric``'s does) it runs
``COCOeval.evaluate()`` once with that ``CocoMetric``'s ground truth, images,
categories, IoU thresholds and ``maxDets``, and keeps the result as
:class:`~snn_det.evaluation.bootstrap.ImageEvaluation` in ``.evaluation``
(``None`` on other ranks).  It adds no metric to the evaluator's output.
:class:`AccuracyRecorder` does the same beside mmpretrain's ``Accuracy`` (a
classifier): each image's top-1 correctness, as
:class:`~snn_det.evaluation.classification.ClassificationEvaluation`.
"""
from __future__ import annotations

import time
from typing import List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from .bootstrap import ImageEvaluation, evaluate_coco
from .classification import ClassificationEvaluation


def coco_detections(results: Sequence[dict], cat_ids: Sequence[int]) -> List[dict]:
    """COCO result dicts from ``dict(img_id, bboxes (N, 4) xyxy, scores, labels)`` as
    ``CocoMetric.results2json`` writes them (``[x, y, w, h]`` from float32 boxes)."""
    dets = []
    for r in results:
        for box, score, label in zip(r['bboxes'].tolist(), r['scores'].tolist(),
                                     r['labels'].tolist()):
            dets.append(dict(image_id=r['img_id'], score=float(score),
                             category_id=cat_ids[int(label)],
                             bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]]))
    return dets


class EvaluationRecorder(BaseMetric):
    """A metric that adds nothing to the evaluator's output and keeps the per-image
    evaluation of each run in ``.evaluation`` (on rank 0) until :meth:`take`."""
    default_prefix = 'bootstrap'

    def __init__(self, metric) -> None:
        super().__init__(collect_device=getattr(metric, 'collect_device', 'cpu'),
                         collect_dir=getattr(metric, 'collect_dir', None))
        self.evaluation = None
        self.seconds = 0.0          # spent evaluating per image (rank 0), for timings

    def take(self) -> tuple:
        """``(evaluation, seconds)`` of the runs since the last call (evaluation ``None``
        on ranks other than 0); forgets both."""
        out = (self.evaluation, self.seconds)
        self.evaluation, self.seconds = None, 0.0
        return out


class AccuracyRecorder(EvaluationRecorder):
    """Record each image's top-1 correctness beside mmpretrain's ``Accuracy``: the
    predicted class (the highest score, or ``pred_label``) against ``gt_label``; the
    image is its ``sample_idx`` (its index in the dataset)."""

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_score' in sample:
                pred = int(sample['pred_score'].argmax())
            else:
                pred = int(sample['pred_label'].reshape(-1)[0])
            self.results.append((int(sample['sample_idx']),
                                 pred, int(sample['gt_label'].reshape(-1)[0])))

    def compute_metrics(self, results: list) -> dict:
        ids, pred, gt = zip(*results) if results else ((), (), ())
        self.evaluation = ClassificationEvaluation.from_predictions(ids, pred, gt)
        return {}


class CocoEvaluationRecorder(EvaluationRecorder):
    """Record the per-image COCO evaluation beside ``coco_metric`` (module docstring).

    Args:
        coco_metric: the evaluator's mmdet ``CocoMetric`` (bbox); its ground truth,
            ``img_ids``, ``cat_ids``, ``iou_thrs`` and ``proposal_nums`` are used.
    """

    def __init__(self, coco_metric) -> None:
        super().__init__(coco_metric)
        self.coco_metric = coco_metric
        self.evaluation: Optional[ImageEvaluation] = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            self.results.append(dict(
                img_id=sample['img_id'],
                bboxes=pred['bboxes'].float().cpu().numpy(),
                scores=pred['scores'].float().cpu().numpy(),
                labels=pred['labels'].cpu().numpy()))

    def compute_metrics(self, results: list) -> dict:
        metric = self.coco_metric
        gt = getattr(metric, '_coco_api', None)
        if gt is None or metric.cat_ids is None:
            print_log('no bootstrap intervals: the CocoMetric has no ann_file',
                      logger='current', level=30)
            self.evaluation = None
            return {}
        img_ids = metric.img_ids if metric.img_ids is not None else gt.getImgIds()
        t0 = time.perf_counter()
        self.evaluation = evaluate_coco(
            gt, coco_detections(results, metric.cat_ids), img_ids=img_ids,
            cat_ids=metric.cat_ids, iou_thrs=np.asarray(metric.iou_thrs),
            max_dets=list(metric.proposal_nums))
        self.seconds += time.perf_counter() - t0
        return {}


def _bbox_coco_metric(evaluator):
    from mmdet.evaluation import CocoMetric
    for m in evaluator.metrics:
        if isinstance(m, CocoMetric) and 'bbox' in m.metrics and not m.format_only:
            return m
    return None


def _top1_accuracy_metric(evaluator):
    try:
        from mmpretrain.evaluation import Accuracy
    except ImportError:                  # no classifiers without mmpretrain
        return None
    for m in evaluator.metrics:
        if isinstance(m, Accuracy) and 1 in tuple(m.topk):
            return m
    return None


def attach_recorder(evaluator) -> Optional[EvaluationRecorder]:
    """Add a recorder to ``evaluator`` (an mmengine ``Evaluator``): a
    :class:`CocoEvaluationRecorder` after its bbox ``CocoMetric``, or an
    :class:`AccuracyRecorder` after mmpretrain's top-1 ``Accuracy``; returns it (the one
    already there, if any), or ``None`` when the evaluator has neither (e.g. VOC)."""
    for m in evaluator.metrics:
        if isinstance(m, EvaluationRecorder):
            return m
    coco = _bbox_coco_metric(evaluator)
    if coco is not None:
        recorder = CocoEvaluationRecorder(coco)
    else:
        accuracy = _top1_accuracy_metric(evaluator)
        if accuracy is None:
            return None
        recorder = AccuracyRecorder(accuracy)
    evaluator.metrics.append(recorder)
    return recorder


def detach_recorder(evaluator) -> None:
    """Remove the recorders :func:`attach_recorder` added to ``evaluator``."""
    evaluator.metrics[:] = [m for m in evaluator.metrics
                            if not isinstance(m, EvaluationRecorder)]
