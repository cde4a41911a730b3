"""The checks a benchmark config's ``targets`` name (:mod:`.targets`), registered in
:data:`~snn_det.registry.TARGET_CHECKS`.

Each is a factory: its arguments come from the config's ``check=dict(type=..., ...)``,
and it returns a function of a results dict that gives a
:class:`~.targets.Measured` (the full text, the verdict, a few words).  With 95 %
bootstrap intervals a ratio is judged by :func:`~snn_det.evaluation.target_verdict` and
two rows tie when their intervals overlap; without them, on the point estimates (ties
below ``TIE``).

Longer than most modules (~390 lines): the checks share their verdict and formatting
helpers, so every target reads the same way in the tables.
"""
from typing import Dict, Optional, Sequence

from ..evaluation import (MET, MISSED, WITHIN_NOISE, interval_text, intervals_overlap,
                          target_verdict)
from ..registry import TARGET_CHECKS
from .metrics import main_metric
from .results import FULL, TIE, ap_ci, find_row, fmt, fmt_pct, metric, ratio_ci
from .results import detectors as detectors_of
from .targets import Measured

__all__ = ['at_least_peers', 'best_full_ratios', 'best_of', 'best_ratio_at', 'energy_ratio_at',
           'highest_at_every_T', 'order_at', 'order_at_every_T', 'ratio_at', 'ratios_at']


def _is_met(ok) -> bool:
    return ok is True or ok == MET


def _ratio_check(row: Optional[dict], v: float, ann: float, bound: float) -> tuple:
    """``(text, ok)`` of ``v / ann >= bound``: on the row's paired ratio interval where it
    has one (``98.5% [97.5, 99.4]``, a verdict word), else on the point (a bool)."""
    rc = ratio_ci(row)
    if rc is not None:
        verdict = target_verdict(rc[0], rc[1], bound)
        return f'{100 * rc[0]:.1f}% {interval_text(rc[1])}: {verdict}', verdict
    return fmt_pct(v / ann, bound), v / ann >= bound


def _ratio(row: Optional[dict], v: float, ann: float) -> float:
    """The row's SNN/ANN ratio: its paired ratio where recorded (from the unrounded
    metrics), else ``v / ann``."""
    rc = ratio_ci(row)
    return v / ann if rc is None else rc[0]


def _at_least(a: Optional[dict], b: Optional[dict]):
    """Is row ``b`` at least row ``a``?  With both intervals: ``met`` (b ahead, the
    intervals apart), ``within noise`` (they overlap: a tie), ``missed`` (b behind, apart);
    without: ``b >= a - TIE``."""
    ca, cb = ap_ci(a), ap_ci(b)
    va, vb = main_metric(a), main_metric(b)
    if ca is not None and cb is not None:
        if intervals_overlap(ca, cb):
            return WITHIN_NOISE
        return MET if vb >= va else MISSED
    return vb >= va - TIE


def _fmt_row(r: Optional[dict]) -> str:
    """The main metric in %, with its interval where the row has one."""
    if r is None:
        return 'not run'
    ci = ap_ci(r)
    return fmt(main_metric(r)) + (f' {interval_text(ci)}' if ci else '')


def _span(ratios: Sequence[float], bound: Optional[float] = None) -> str:
    """``a% to b%`` of the ratios (``a%`` when they agree)."""
    if not ratios:
        return 'not run'
    lo, hi = fmt_pct(min(ratios), bound), fmt_pct(max(ratios), bound)
    return lo if lo == hi else f'{lo} to {hi}'


def _counted(oks: list, what: str) -> str:
    """``k of n <what>`` over the checks that ran (and how many were within noise), and
    how many did not."""
    ran = [o for o in oks if o is not None]
    text = f'{sum(_is_met(o) for o in ran)} of {len(ran)} {what}'
    noise = sum(o == WITHIN_NOISE for o in ran)
    text += f', {noise} within noise' if noise else ''
    missing = len(oks) - len(ran)
    return text + (f' ({missing} not run)' if missing else '')


@TARGET_CHECKS.register_module(name='ratio_at')
def ratio_at(method: str, T: int, bound: float, detectors: Optional[Sequence[str]] = None):
    """``method`` at ``T`` against the ANN, ``>= bound``, on every detector (or ``detectors``)."""
    dets = detectors
    def check(result):
        parts, oks, ratios = [], [], []
        for det in dets or detectors_of(result):
            v, ann = metric(result, det, method, T), metric(result, det, 'ANN')
            if v is None or not ann:
                parts.append(f'{det} not run')
                oks.append(None)
                continue
            row = find_row(result, det, method, T)
            text, ok = _ratio_check(row, v, ann, bound)
            parts.append(f'{det} {fmt(v)} ({text})')
            oks.append(ok)
            ratios.append(_ratio(row, v, ann))
        return Measured('; '.join(parts), _all(oks), f'{_span(ratios, bound)} of the ANN')
    return check


def _all(oks: list):
    """One verdict of several: any miss, else any not run, else any within noise, else
    met; in verdict words where any check had intervals, else as a bool."""
    words = any(isinstance(o, str) for o in oks)
    if any(o is False or o == MISSED for o in oks):
        return MISSED if words else False
    if not oks or any(o is None for o in oks):
        return None
    if any(o == WITHIN_NOISE for o in oks):
        return WITHIN_NOISE
    return MET if words else True


def _ordered(result, det, methods, T):
    """(rows, ok): each method at least the one before it (:func:`_at_least`: ties are
    overlapping intervals, or below TIE without intervals)."""
    rows = [find_row(result, det, m, T) for m in methods]
    if any(r is None for r in rows):
        return rows, None
    return rows, _all([_at_least(a, b) for a, b in zip(rows, rows[1:])])


def _per_T_text(det: str, yes: list, no: list, missing: list, noise: Sequence = ()) -> str:
    """'<det>: yes at T=..; within noise at ..; no at ..; T=.. not run' of a check made
    at every T."""
    text = det + ':'
    if yes:
        text += ' yes at T=' + ', '.join(map(str, yes))
    if noise:
        text += ('; ' if yes else ' ') + 'within noise at ' + ', '.join(noise)
    if no:
        text += ('; ' if yes or noise else ' ') + 'no at ' + ', '.join(no)
    if missing:
        text += '; T=' + ', '.join(map(str, missing)) + ' not run'
    return text


@TARGET_CHECKS.register_module(name='order_at_every_T')
def order_at_every_T(methods: Sequence[str], detectors: Optional[Sequence[str]] = None):
    """Each of ``methods`` at least the one before it, at every T of the benchmark."""
    dets = detectors
    def check(result):
        parts, oks = [], []
        for det in dets or detectors_of(result):
            yes, no, missing, noise = [], [], [], []
            for T in result['T']:
                rows, ok = _ordered(result, det, methods, T)
                if ok is None:
                    missing.append(T)
                elif _is_met(ok):
                    yes.append(T)
                    oks.append(ok)
                else:
                    (noise if ok == WITHIN_NOISE else no).append(
                        f'T={T} ' + ' / '.join(_fmt_row(r) for r in rows))
                    oks.append(ok)
            parts.append(_per_T_text(det, yes, no, missing, noise))
        return Measured('; '.join(parts), _all(oks),
                        'holds at ' + _counted(oks, '(detector, T)'))
    return check


@TARGET_CHECKS.register_module(name='order_at')
def order_at(methods: Sequence[str], T: int):
    """Each of ``methods`` at least the one before it, at ``T``."""
    def check(result):
        parts, oks = [], []
        for det in detectors_of(result):
            rows, ok = _ordered(result, det, methods, T)
            if all(r is None for r in rows):
                continue
            parts.append(f'{det} ' + ' / '.join(_fmt_row(r) for r in rows))
            oks.append(ok)
        return Measured('; '.join(parts), _all(oks), 'holds for ' + _counted(oks, 'detectors'))
    return check


def _at_least_all(mine: dict, others: Sequence[dict]):
    """``mine`` at least every row of ``others`` (:func:`_at_least`; without intervals
    ties below TIE)."""
    return _all([_at_least(o, mine) for o in others]) if others else True


@TARGET_CHECKS.register_module(name='best_of')
def best_of(method: str, T: int):
    """``method`` highest of all methods at T (ties: overlapping intervals, or below TIE
    without intervals)."""
    def check(result):
        parts, oks = [], []
        for det in detectors_of(result):
            rows = [r for r in result['results'] if r['detector'] == det and r['T'] == T]
            mine = find_row(result, det, method, T)
            if not rows or mine is None:
                parts.append(f'{det} not run')
                oks.append(None)
                continue
            order = lambda r: (main_metric(r), r['method'])  # noqa: E731
            best, worst = max(rows, key=order), min(rows, key=order)
            parts.append(f'{det}: {method} {_fmt_row(mine)}, best {best["method"]} '
                         f'{_fmt_row(best)}, worst {worst["method"]} {_fmt_row(worst)}')
            oks.append(_at_least_all(mine, [r for r in rows if r is not mine]))
        return Measured('; '.join(parts), _all(oks), 'best for ' + _counted(oks, 'detectors'))
    return check


@TARGET_CHECKS.register_module(name='best_ratio_at')
def best_ratio_at(T: int, bound: float, detectors: Optional[Sequence[str]] = None,
                  backbone_scope: bool = False):
    """The best rows at ``T`` against the ANN (of ``detectors``; without the fully spiking
    "(full)" rows if ``backbone_scope``)."""
    dets = detectors
    def check(result):
        parts, oks, best = [], [], []
        for det in dets or detectors_of(result):
            ann = metric(result, det, 'ANN')
            rows = sorted(((main_metric(r), r['method'], r) for r in result['results']
                           if r['detector'] == det and r['T'] == T
                           and not (backbone_scope and FULL in r['method'])),
                          key=lambda x: x[:2], reverse=True)
            if not rows or not ann:
                parts.append(f'{det} not run')
                oks.append(None)
                continue
            checks = [_ratio_check(r, v, ann, bound) for v, _, r in rows[:3]]
            parts.append(('' if dets is None else f'{det}: ') +
                         ', '.join(f'{m} {fmt(v)} ({text})'
                                   for (v, m, _), (text, _) in zip(rows, checks)))
            oks.append(checks[0][1])
            best.append(_ratio(rows[0][2], rows[0][0], ann))
        return Measured('; '.join(parts), _all(oks), f'best {_span(best, bound)} of the ANN')
    return check


@TARGET_CHECKS.register_module(name='ratios_at')
def ratios_at(method: str, bounds: Dict[int, float]):
    """``method`` against the ANN at each T of ``bounds`` (``{T: bound}``)."""
    bounds = {int(T): b for T, b in dict(bounds).items()}

    def check(result):
        parts, oks, ratios = [], [], {T: [] for T in bounds}
        for det in detectors_of(result):
            ann, cells = metric(result, det, 'ANN'), []
            for T, bound in bounds.items():
                v = metric(result, det, method, T)
                if v is None or not ann:
                    cells.append(f'T={T} not run')
                    oks.append(None)
                    continue
                row = find_row(result, det, method, T)
                text, ok = _ratio_check(row, v, ann, bound)
                cells.append(f'T={T} {fmt(v)} ({text})')
                oks.append(ok)
                ratios[T].append(_ratio(row, v, ann))
            parts.append(f'{det} ' + ', '.join(cells))
        return Measured('; '.join(parts), _all(oks),
                        ', '.join(f'T={T}: {_span(ratios[T], b)}' for T, b in bounds.items()))
    return check


@TARGET_CHECKS.register_module(name='highest_at_every_T')
def highest_at_every_T(method: str):
    """``method`` at least every other SNN row at each T it was run (no tie margin
    without intervals; with intervals, overlapping ones are a tie: within noise)."""
    def check(result):
        parts, oks = [], []
        for det in detectors_of(result):
            yes, no, missing, noise = [], [], [], []
            for T in result['T']:
                mine = find_row(result, det, method, T)
                if mine is None:
                    missing.append(T)
                    continue
                others = [r for r in result['results'] if r['detector'] == det
                          and r['T'] == T and (m := r['method']) != method
                          and '(rescaled' not in m and _same_scope(m, method)
                          and main_metric(r) is not None]
                if ap_ci(mine) is not None and all(ap_ci(r) is not None for r in others):
                    ok = _at_least_all(mine, others)
                    close = [r for r in others if _at_least(r, mine) != MET]
                else:
                    close = [r for r in others if main_metric(r) > main_metric(mine)]
                    ok = not close
                text = (f'T={T} ({method} {_fmt_row(mine)}, ' +
                        ', '.join(f'{r["method"]} {_fmt_row(r)}' for r in close) + ')')
                if _is_met(ok):
                    yes.append(T)
                else:
                    (noise if ok == WITHIN_NOISE else no).append(text)
                oks.append(ok)
            parts.append(_per_T_text(det, yes, no, missing, noise))
        return Measured('; '.join(parts), _all(oks),
                        'highest at ' + _counted(oks, '(detector, T)'))
    return check


def _same_scope(a: str, b: str) -> bool:
    """Rows of fully spiking detectors ("(full)") are compared among themselves."""
    return (FULL in a) == (FULL in b)


@TARGET_CHECKS.register_module(name='best_full_ratios')
def best_full_ratios(bounds: Dict[int, float], detectors: Optional[Sequence[str]] = None):
    """The best fully spiking row ("(full)" methods) at each T against the ANN (of
    ``detectors``, the detectors the benchmark converts fully)."""
    dets = detectors
    bounds = {int(T): b for T, b in dict(bounds).items()}

    def check(result):
        parts, oks, ratios = [], [], {T: [] for T in bounds}
        for det in dets or detectors_of(result):
            ann = metric(result, det, 'ANN')
            cells = []
            for T, bound in bounds.items():
                rows = sorted(((main_metric(r), r['method'], r) for r in result['results']
                               if r['detector'] == det and r['T'] == T
                               and FULL in r['method']), key=lambda x: x[:2], reverse=True)
                if not rows or not ann:
                    cells.append(f'T={T} not run')
                    oks.append(None)
                    continue
                v, m, row = rows[0]
                text, ok = _ratio_check(row, v, ann, bound)
                cells.append(f'T={T} {m} {fmt(v)} ({text})')
                oks.append(ok)
                ratios[T].append(_ratio(row, v, ann))
            parts.append(f'{det}: ' + ', '.join(cells))
        return Measured('; '.join(parts), _all(oks),
                        ', '.join(f'T={T}: {_span(ratios[T], b)}' for T, b in bounds.items()))
    return check


@TARGET_CHECKS.register_module(name='at_least_peers')
def at_least_peers(ours: Sequence[str]):
    """The best of ``ours`` (snn-det's methods) at least every other method of the table
    (the peers) at each T, on every detector a peer converted (a peer row that carries an
    error, a network it could not convert, is not compared): with intervals, ``met`` when
    ours is ahead beyond both intervals, ``within noise`` when they overlap."""
    def check(result):
        parts, oks = [], []
        for det in detectors_of(result):
            drows = [r for r in result['results'] if r['detector'] == det and r['T']]
            peers = sorted({r['method'] for r in drows if r['method'] not in ours
                            and main_metric(r) is not None})
            if not peers:
                continue
            yes, no, missing, noise = [], [], [], []
            for T in result['T']:
                mine = [r for r in drows if r['method'] in ours and r['T'] == T
                        and main_metric(r) is not None]
                others = [r for r in drows if r['method'] in peers and r['T'] == T
                          and main_metric(r) is not None]
                if not mine or not others:
                    missing.append(T)
                    continue
                best = max(mine, key=main_metric)
                ok = _at_least_all(best, others)
                oks.append(ok)
                if _is_met(ok):
                    yes.append(T)
                else:
                    top = max(others, key=main_metric)
                    (noise if ok == WITHIN_NOISE else no).append(
                        f'T={T} ({best["method"]} {_fmt_row(best)}, {top["method"]} '
                        f'{_fmt_row(top)})')
            parts.append(_per_T_text(det, yes, no, missing, noise))
        return Measured('; '.join(parts) or 'no peer converted any detector', _all(oks),
                        'ahead at ' + _counted(oks, '(detector, T)'))
    return check


@TARGET_CHECKS.register_module(name='energy_ratio_at')
def energy_ratio_at(method: str, T: int, bound: float):
    """The whole model's energy per image of ``method`` at ``T`` at most ``bound`` x the
    ANN's (rows measured with the benchmark's ``energy`` option; a count of operations on
    calibration images, no interval)."""
    def check(result):
        parts, oks, ratios = [], [], []
        for det in detectors_of(result):
            r = find_row(result, det, method, T)
            e = (r or {}).get('energy')
            if not e:
                parts.append(f'{det} not run')
                oks.append(None)
                continue
            parts.append(f'{det} {e["snn_mJ"]:.3f} mJ vs ANN {e["ann_mJ"]:.3f} mJ '
                         f'({e["ratio"]:.2f}x)')
            oks.append(e['ratio'] <= bound)
            ratios.append(e['ratio'])
        lo, hi = (f'{min(ratios):.2f}x', f'{max(ratios):.2f}x') if ratios else ('', '')
        brief = 'not run' if not ratios else \
            (f'{lo} the ANN' if lo == hi else f'{lo} to {hi} the ANN')
        return Measured('; '.join(parts), _all(oks), brief)
    return check
