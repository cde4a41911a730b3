"""Verdicts on targets and comparisons from point estimates and their 95 % intervals.

A target ``x >= target`` (e.g. SNN/ANN AP ratio >= 0.95) is judged from the point
estimate ``point`` and its interval ``[lo, hi]`` (:mod:`snn_det.evaluation.bootstrap`):

* ``met``: the point estimate meets the target and so does the whole interval
  (``point >= target`` and ``lo >= target``);
* ``missed``: the point estimate misses it and so does the whole interval
  (``point < target`` and ``hi < target``);
* ``within noise``: anything else -- the interval straddles the target, so the
  test images cannot tell whether it is met.

For targets where lower is better (``x <= target``) the same rules hold mirrored
(``higher_is_better=False``).  Two methods *tie* when their intervals overlap.
"""
from __future__ import annotations

import math
from typing import Sequence

MET, WITHIN_NOISE, MISSED = 'met', 'within noise', 'missed'
VERDICTS = (MET, WITHIN_NOISE, MISSED)


def _interval(ci: Sequence[float]) -> tuple:
    lo, hi = (float(v) for v in ci)
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f'not an interval: {list(ci)}')
    return lo, hi


def target_verdict(point: float, ci: Sequence[float], target: float,
                   higher_is_better: bool = True) -> str:
    """``'met'``, ``'within noise'`` or ``'missed'`` (module docstring) for ``point`` with
    interval ``ci = (lo, hi)`` against ``target``."""
    lo, hi = _interval(ci)
    if not higher_is_better:            # x <= target  <=>  -x >= -target
        point, lo, hi, target = -point, -hi, -lo, -target
    if point >= target and lo >= target:
        return MET
    if point < target and hi < target:
        return MISSED
    return WITHIN_NOISE


def intervals_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the intervals ``a`` and ``b`` share a point (touching counts)."""
    (alo, ahi), (blo, bhi) = _interval(a), _interval(b)
    return max(alo, blo) <= min(ahi, bhi)


def compare(a_point: float, a_ci: Sequence[float], b_point: float, b_ci: Sequence[float],
            higher_is_better: bool = True) -> str:
    """``'tie'`` when the intervals overlap, else ``'a'`` or ``'b'``: the better one."""
    if intervals_overlap(a_ci, b_ci):
        return 'tie'
    return 'a' if (a_point > b_point) == higher_is_better else 'b'
