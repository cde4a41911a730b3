"""The evaluation protocol: held-out test split, 95 % bootstrap intervals, verdicts.

See ``docs/evaluation.md``.
"""
from .bootstrap import (DEFAULT_RESAMPLES, LEVEL, ImageEvaluation, bootstrap_intervals,
                        evaluate_coco, percentile_interval, resample_counts)
from .classification import ClassificationEvaluation
from .intervals import INTERVAL_KEYS, add_intervals, interval_text
from .recorder import (AccuracyRecorder, CocoEvaluationRecorder, EvaluationRecorder,
                       attach_recorder, detach_recorder)
from .splits import SPLITS, use_split
from .verdict import (MET, MISSED, VERDICTS, WITHIN_NOISE, compare, intervals_overlap,
                      target_verdict)

__all__ = ['DEFAULT_RESAMPLES', 'LEVEL', 'ImageEvaluation', 'bootstrap_intervals',
           'evaluate_coco', 'percentile_interval', 'resample_counts', 'INTERVAL_KEYS',
           'add_intervals', 'interval_text', 'ClassificationEvaluation', 'AccuracyRecorder',
           'CocoEvaluationRecorder', 'EvaluationRecorder', 'attach_recorder',
           'detach_recorder', 'SPLITS', 'use_split', 'MET', 'MISSED', 'VERDICTS',
           'WITHIN_NOISE', 'compare', 'intervals_overlap', 'target_verdict']
