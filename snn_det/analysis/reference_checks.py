"""Target checks against a reference rather than between methods, registered in
:data:`~snn_det.registry.TARGET_CHECKS` like :mod:`.target_checks`:

* ``ann_above``: the ANN itself against a floor, e.g. a model that predicts nothing
  (COCO AP 0), judged by the ANN's bootstrap interval;
* ``ratio_gap``: one detector's SNN/ANN ratio against another's at the same method and T,
  e.g. the same checkpoint on whole photographs (potentials calibrated on tiles) against
  the tiles of the same photographs (``configs/benchmarks/neon_trees.py``).
"""
from typing import Optional, Sequence, Union

from ..evaluation import MET, MISSED, WITHIN_NOISE, interval_text
from ..registry import TARGET_CHECKS
from .metrics import main_metric
from .results import ap_ci, find_row, fmt, ratio_ci
from .results import detectors as detectors_of
from .target_checks import _all
from .targets import Measured

__all__ = ['ann_above', 'ratio_gap']


def _above(lo: float, hi: float, bound: float) -> str:
    """``met`` when the whole interval is above ``bound``, ``missed`` when none of it is."""
    return MET if lo > bound else (MISSED if hi <= bound else WITHIN_NOISE)


@TARGET_CHECKS.register_module(name='ann_above')
def ann_above(bound: float = 0.0, detectors: Optional[Sequence[str]] = None):
    """The ANN's main metric above ``bound`` (a fraction, like the rows), on every detector
    (or ``detectors``): met when its whole 95 % interval is above, without an interval on
    the point."""
    dets = detectors

    def check(result):
        parts, oks, points = [], [], []
        for det in dets or detectors_of(result):
            row = find_row(result, det, 'ANN')
            if row is None or main_metric(row) is None:
                parts.append(f'{det} not run')
                oks.append(None)
                continue
            v, ci = main_metric(row), ap_ci(row)
            ok = _above(ci[0], ci[1], bound) if ci else v > bound
            words = [det, fmt(v)] + [interval_text(ci)] * bool(ci)
            ap50 = f', AP50 {fmt(row["AP50"])}' if row.get('AP50') is not None else ''
            parts.append(' '.join(words) + ap50)
            oks.append(ok)
            points.append(fmt(v))
        return Measured('; '.join(parts), _all(oks), 'ANN ' + ', '.join(points))
    return check


@TARGET_CHECKS.register_module(name='ratio_gap')
def ratio_gap(T: int, detector: Union[str, Sequence[str]], reference: Union[str, Sequence[str]],
              bound: float, methods: Optional[Sequence[str]] = None):
    """``|ratio(detector) - ratio(reference)| <= bound`` for each method at ``T`` (default:
    every method both were run with), the ratios being SNN/ANN of the main metric.
    ``detector`` and ``reference`` may be equal-length lists of names, checked pair by pair
    (e.g. each detector's whole photographs against its tiles).  The two rows are evaluated
    on different images, so their ratio intervals are not paired: the difference is given
    the widest interval they allow, ``[lo_d - hi_r, hi_d - lo_r]`` (a conservative bound,
    not a bootstrap interval).  Met when that interval lies within ``[-bound, bound]``,
    missed when it lies outside, else within noise."""
    dets = [detector] if isinstance(detector, str) else list(detector)
    refs = [reference] if isinstance(reference, str) else list(reference)
    if len(dets) != len(refs):
        raise ValueError(f'ratio_gap: {len(dets)} detectors against {len(refs)} references')

    def one(result, det, ref):
        names = methods or [r['method'] for r in result['results']
                            if r['detector'] == ref and r['T'] == T
                            and find_row(result, det, r['method'], T) is not None]
        parts, oks, gaps = [], [], []
        for m in names:
            d, r = ratio_ci(find_row(result, det, m, T)), ratio_ci(find_row(result, ref, m, T))
            if d is None or r is None:
                parts.append(f'{m} T={T} not run')
                oks.append(None)
                continue
            gap, lo, hi = d[0] - r[0], d[1][0] - r[1][1], d[1][1] - r[1][0]
            if lo >= -bound and hi <= bound and abs(gap) <= bound:
                ok = MET
            elif lo > bound or hi < -bound:
                ok = MISSED
            else:
                ok = WITHIN_NOISE
            parts.append(f'{m} T={T}: {100 * d[0]:.1f}% {interval_text(d[1])} against '
                         f'{100 * r[0]:.1f}% {interval_text(r[1])}, {100 * gap:+.1f} points '
                         f'{interval_text((lo, hi))}')
            oks.append(ok)
            gaps.append(f'{m} {100 * gap:+.1f}')
        if not names:
            parts, oks = [f'T={T} not run'], [None]
        return parts, oks, (', '.join(gaps) + ' points') if gaps else 'not run'

    def check(result):
        parts, oks, briefs = [], [], []
        for det, ref in zip(dets, refs):
            p, o, b = one(result, det, ref)
            label = f'{det} against {ref}: ' if len(dets) > 1 else ''
            parts.append(label + '; '.join(p))
            oks += o
            briefs.append((f'{ref}: ' if len(dets) > 1 else '') + b)
        return Measured('; '.join(parts), _all(oks), '; '.join(briefs))
    return check
