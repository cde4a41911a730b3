"""Bootstrap intervals added to the rows of a results table (ANN + SNN at each T).

:func:`add_intervals` takes the rows of :func:`snn_det.apis.evaluate.evaluate_per_T`
and each row's :class:`~snn_det.evaluation.bootstrap.ImageEvaluation` and adds,
with every model scored on the same seeded resamples of the test images::

    AP_ci=[lo, hi], AP50_ci=[lo, hi]        # 95 % percentile bootstrap intervals
                                            # (a classifier: top1_ci=[lo, hi])
    ratio=AP / AP_ANN, ratio_ci=[lo, hi]    # SNN rows, paired with the ANN row
    bootstrap=dict(resamples=B, seed=s, images=n, level=0.95)

The existing keys (``AP``, ``AP50``, ... from mmdet's ``CocoMetric``, rounded to
three decimals) are left as they are; ``ratio`` uses the unrounded APs.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from .bootstrap import LEVEL, ImageEvaluation, bootstrap_intervals

#: the keys :func:`add_intervals` adds to a row (a classifier's: ``top1_ci`` for the AP keys)
INTERVAL_KEYS = ('AP_ci', 'AP50_ci', 'top1_ci', 'ratio', 'ratio_ci', 'bootstrap')


def add_intervals(rows: List[dict], evaluations: Sequence[Optional[ImageEvaluation]],
                  num_resamples: int, seed: int = 0, level: float = LEVEL) -> None:
    """Add the interval keys (module docstring) to ``rows`` in place.

    ``evaluations[i]`` belongs to ``rows[i]`` (``None``: no interval for that row).
    The reference of the ratios is the row with ``model == 'ANN'``, if any.
    """
    if num_resamples <= 0:
        return
    named = {i: e for i, e in enumerate(evaluations) if e is not None}
    if not named:
        return
    ann = next((i for i in named if rows[i].get('model') == 'ANN'), None)
    cis = bootstrap_intervals(named, reference=ann, num_resamples=num_resamples, seed=seed,
                              level=level)
    for i, ci in cis.items():
        rows[i].update({k: v for k, v in ci.items() if k.endswith('_ci') and k != 'ratio_ci'})
        if 'ratio' in ci:
            rows[i]['ratio'] = ci['ratio']
            rows[i]['ratio_ci'] = ci['ratio_ci']
        rows[i]['bootstrap'] = dict(resamples=int(num_resamples), seed=int(seed),
                                    images=named[i].num_images, level=level)


def interval_text(ci: Optional[Sequence[float]], scale: float = 100.0) -> str:
    """``[49.9, 53.6]`` (in %) or ``''``."""
    if not ci:
        return ''
    return f'[{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]'
