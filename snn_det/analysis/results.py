"""Benchmark results as data: the files, the tables and the targets made from them.

A benchmark's ``results.json`` is the source of truth::

    dict(name=..., config=..., T=[...], seed=0, complete=True,
         results=[dict(detector=..., method=..., T=None | int, AP=0.52, ..., seconds=...)],
         conversion_times=[dict(detector=..., method=..., T=..., seconds=..., ...)])

Metrics are fractions (0.528, not 52.8).  :func:`write_result_files` writes
``results.{json,csv,md}`` and the metric-vs-T plots from it;
:func:`results_markdown` renders the tables alone; :func:`targets_rows` checks the
targets of the seed papers (``TARGETS``) against the rows.  A target is met or not
on the unrounded numbers, and a shown percentage gets more decimals when rounding
would put it on the other side of its bound.

Rows of the evaluation protocol (``docs/evaluation.md``) record their ``split`` and
``images`` and carry 95 % bootstrap intervals (``AP_ci``; SNN rows ``ratio`` and
``ratio_ci``, paired with their ANN).  The tables show them (``51.1 [49.6, 53.1]``) and
judge targets by them (:func:`~snn_det.evaluation.target_verdict`: met / within noise /
missed); two rows tie when their intervals overlap
(:func:`~snn_det.evaluation.intervals_overlap`) instead of within ``TIE``.  Rows
without intervals (results that record no split were measured on ``val``) keep the
judgement on point estimates (yes / no, ties below ``TIE``).
"""
import math
import csv
import io
import json
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .metrics import main_metric, plot_metric_vs_T
from ..evaluation import (MET, MISSED, WITHIN_NOISE, interval_text, intervals_overlap,
                          target_verdict)
from ..utils.checkpoint import write_text_atomic

METRIC_ORDER = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'mAP', 'top1', 'top5')
#: differences below this (in metric points, i.e. 0.5 AP) count as ties, between rows
#: without intervals (rows with intervals tie when their intervals overlap)
TIE = 0.005


def _finite(ci) -> bool:
    return bool(ci) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ci)


def ap_ci(row: Optional[dict]):
    """The 95 % interval of the row's main metric, or ``None`` (only COCO AP has one)."""
    if row is None or 'AP' not in row or not _finite(row.get('AP_ci')):
        return None
    return row['AP_ci']


def ratio_ci(row: Optional[dict]):
    """``(ratio, interval)`` of an SNN row's paired SNN/ANN ratio, or ``None``."""
    if row is None or not _finite(row.get('ratio_ci')) or row.get('ratio') is None \
            or not math.isfinite(row['ratio']):
        return None
    return row['ratio'], row['ratio_ci']


def split_of(row: dict, result: dict) -> str:
    """The split a row was evaluated on (results that record none: ``val``)."""
    return row.get('split') or result.get('split') or 'val'


def evaluated_text(result: dict) -> str:
    """Which split (and how many images) each detector was evaluated on, in a sentence."""
    rows = [r for r in result['results'] if not r.get('error')]
    per = {}
    for det in dict.fromkeys(r['detector'] for r in rows):
        seen = dict.fromkeys((split_of(r, result),
                              r.get('images') or (r.get('bootstrap') or {}).get('images'))
                             for r in rows if r['detector'] == det)
        per[det] = '; '.join(f'{s} split' + (f', {n} images' if n else '') for s, n in seen)
    if not per:
        return ''
    texts = set(per.values())
    text = (next(iter(texts)) if len(texts) == 1
            else '; '.join(f'{d}: {t}' for d, t in per.items()))
    with_ci = [r['bootstrap'] for r in rows if r.get('bootstrap') and r.get('AP_ci')]
    if with_ci:
        b = with_ci[0]
        text += (f"; 95% bootstrap intervals over its images in brackets ({b['resamples']} "
                 f"resamples, seed {b['seed']})")
    elif not any(r.get('split') for r in rows) and not result.get('split'):
        text += ' (the number of images is not recorded); no intervals'
    else:
        text += '; no intervals'
    return f'Evaluated on: {text}.'


def _slug(name: str) -> str:
    return name.replace(' ', '_')


def plot_name(detector: str) -> str:
    return f'{_slug(detector)}_metric_vs_T.png'


def display_path(path: str, root: Optional[str] = None) -> str:
    """A config path as the reader's checkout names it (results files store absolute ones)."""
    if root and osp.isabs(path) and osp.abspath(path).startswith(osp.abspath(root) + osp.sep):
        return osp.relpath(path, root)
    if osp.isabs(path) and '/configs/' in path:
        return path[path.rindex('/configs/') + 1:]
    return path


def provenance_line(result: dict) -> str:
    """One line: the commit, versions and date the results were measured with."""
    p = result.get('provenance')
    if not p:
        return ('Provenance: not recorded (measured before results files kept it; the '
                "rows' dates are in results.json where present).")
    v = p.get('versions', {})
    vers = ', '.join(f'{k} {v[k]}' for k in ('torch', 'mmcv', 'mmdet', 'mmengine') if k in v)
    return f"Provenance: commit `{p.get('commit', '?')[:12]}`, {vers}; {p.get('date', '?')}."


def metric_series(result: dict) -> Dict[str, Tuple[Optional[float], Dict[str, list]]]:
    """Per detector: (ANN main metric, {method: [(T, metric), ...]}) of the SNN rows."""
    out = {}
    rows = result['results']
    for det in dict.fromkeys(r['detector'] for r in rows):
        drows = [r for r in rows if r['detector'] == det]
        ann = next((main_metric(r) for r in drows if r['method'] == 'ANN'), None)
        series = {}
        for r in drows:
            m = r['method']
            if r['T'] and not m.startswith('ANN') and not m.endswith('(its ANN)'):
                series.setdefault(m, []).append((r['T'], main_metric(r)))
        out[det] = (ann, series)
    return out


def snn_methods(rows: List[dict]) -> List[str]:
    """The SNN methods of ``rows`` in their order (not the ANN and its variants)."""
    return [m for m in dict.fromkeys(r['method'] for r in rows)
            if not m.startswith('ANN') and not m.endswith('(its ANN)')]


def _metric_cell(drows: List[dict], method: str, T: int, ann: Optional[float]) -> str:
    """``method`` at ``T`` in %, with % of its ANN (a rescaled row: the rescaled ANN);
    with intervals where the row has them: ``51.1 [49.6, 53.1] (98.5% [97.5, 99.4])``."""
    r = next((r for r in drows if r['method'] == method and r['T'] == T), None)
    if r is None:
        return ''
    ci, rc = ap_ci(r), ratio_ci(r)
    if ci is not None:
        text = f'{100 * main_metric(r):.1f} {interval_text(ci)}'
        return text + (f' ({100 * rc[0]:.1f}% {interval_text(rc[1])})' if rc else '')
    v, base = main_metric(r), ann
    if '(rescaled' in method:
        tag = method[method.index('('):]
        base = next((main_metric(x) for x in drows if x['method'] == f'ANN {tag}'), ann)
    return f'{100 * v:.1f} ({100 * v / base:.0f}%)' if base else f'{100 * v:.1f}'


def metric_table(result: dict, detector: str) -> str:
    """``ANN: x`` and the main metric of ``detector``'s SNN methods x T (in %)."""
    drows = [r for r in result['results'] if r['detector'] == detector]
    ann_row = next((r for r in drows if r['method'] == 'ANN'), None)
    ann = main_metric(ann_row) if ann_row is not None else None
    T_list = result['T']
    ci = ap_ci(ann_row)
    lines = [(f'ANN: {100 * ann:.1f}' + (f' {interval_text(ci)}' if ci else ''))
             if ann is not None else '', '',
             '| method | ' + ' | '.join(f'T={t}' for t in T_list) + ' |',
             '|---|' + '---|' * len(T_list)]
    for m in snn_methods(drows):
        err = next((r['error'] for r in drows if r['method'] == m and r.get('error')), None)
        if err is not None:      # a peer that could not convert the network (snn_det.peers)
            lines.append(f'| {m} | not converted: {err.replace("|", "/")} |'
                         + ' |' * (len(T_list) - 1))
            continue
        lines.append(f'| {m} | ' + ' | '.join(_metric_cell(drows, m, t, ann) for t in T_list)
                     + ' |')
    return '\n'.join(lines)


def results_markdown(result: dict, plot_dir: Optional[str] = None, image_prefix: str = '',
                     root: Optional[str] = None, level: int = 1) -> str:
    """The tables of one benchmark: per detector the main metric (methods x T, % of the
    ANN), all metrics, the plot (when ``plot_dir`` holds it, or always without
    ``plot_dir``), then conversion times.  ``level`` is the heading level of the title."""
    h1, h2 = '#' * level, '#' * (level + 1)
    rows = result['results']
    keys = [k for k in METRIC_ORDER if any(k in r for r in rows)]
    lines = [f'{h1} Benchmark {result["name"]}', '',
             f'Config: `{display_path(result["config"], root)}`; seed {result["seed"]}. '
             f'Main metric in % (COCO AP@[.5:.95], VOC mAP or top-1); in brackets: % of the ANN.',
             '', evaluated_text(result), '', provenance_line(result), '']
    for det in dict.fromkeys(r['detector'] for r in rows):
        drows = [r for r in rows if r['detector'] == det]
        methods = snn_methods(drows)
        lines += [f'{h2} {det}', '', metric_table(result, det)]
        lines.append('')
        cis = any(ap_ci(r) for r in drows)     # interval columns where rows have them
        lines += ['<details><summary>all metrics</summary>', '',
                  '| method | T | ' + ' | '.join(keys)
                  + (' | AP 95% CI | % of ANN | 95% CI' if cis else '') + ' | eval s | convert s |',
                  '|---|---|' + '---|' * (len(keys) + 2 + 3 * cis)]
        for r in drows:
            rc = ratio_ci(r)
            extra = (f' | {interval_text(ap_ci(r))} | {f"{100 * rc[0]:.1f}" if rc else ""} | '
                     f'{interval_text(rc[1]) if rc else ""}') if cis else ''
            lines.append(f'| {r["method"]} | {"" if r["T"] is None else r["T"]} | '
                         + ' | '.join(f'{100 * r[k]:.1f}' if k in r else '' for k in keys)
                         + extra
                         + f' | {r.get("seconds", "")} | {r.get("convert_seconds", "")} |')
        lines += ['', '</details>', '']
        png = plot_name(det)
        has_series = any(r['T'] for r in drows if r['method'] in methods)
        if has_series and (plot_dir is None or osp.isfile(osp.join(plot_dir, png))):
            lines += [f'![{det}]({image_prefix}{png})', '']
        if plot_dir is not None:        # per-layer relative error (seed 001 Fig. 2 layout)
            import glob
            for f in sorted(glob.glob(osp.join(plot_dir, f'{_slug(det)}_layer_error_T*.png'))):
                name = osp.basename(f)
                lines += [f'Per-layer relative error: ![{name}]({image_prefix}{name})', '']
    lines += [f'{h2} Conversion time (s)', '',
              '| detector | method | T | total | thresholds | calibration steps |',
              '|---|---|---|---|---|---|']
    for t in result['conversion_times']:
        steps = ', '.join(f'{k} {v}' for k, v in t.items()
                          if k not in ('detector', 'method', 'T', 'seconds', 'total',
                                       'thresholds'))
        lines.append(f'| {t["detector"]} | {t["method"]} | {t["T"]} | {t["seconds"]} | '
                     f'{t.get("thresholds", "")} | {steps} |')
    return '\n'.join(lines) + '\n'


def results_csv(result: dict) -> str:
    rows = result['results']
    keys = [k for k in METRIC_ORDER if any(k in r for r in rows)]
    buf = io.StringIO()
    w = csv.writer(buf)
    errors = any(r.get('error') for r in rows)     # rows of peers that did not convert
    splits = any(r.get('split') for r in rows)     # rows of the evaluation protocol
    cis = any(ap_ci(r) for r in rows)

    def f4(v):
        return '' if v is None else f'{v:.4f}'
    w.writerow(['detector', 'method', 'T'] + keys + ['eval_seconds', 'convert_seconds']
               + (['split', 'images'] if splits else [])
               + (['AP_ci_lo', 'AP_ci_hi', 'ratio', 'ratio_ci_lo', 'ratio_ci_hi']
                  if cis else [])
               + (['error'] if errors else []))
    for r in rows:
        ci, rc = ap_ci(r) or (None, None), ratio_ci(r) or (None, (None, None))
        w.writerow([r['detector'], r['method'], '' if r['T'] is None else r['T']]
                   + [f'{r[k]:.4f}' if k in r else '' for k in keys]
                   + [r.get('seconds', ''), r.get('convert_seconds', '')]
                   + ([r.get('split', ''), r.get('images', '')] if splits else [])
                   + ([f4(ci[0]), f4(ci[1]), f4(rc[0]), f4(rc[1][0]), f4(rc[1][1])]
                      if cis else [])
                   + ([r.get('error', '')] if errors else []))
    return buf.getvalue()


def write_plots(result: dict, out_dir: str) -> List[str]:
    """One metric-vs-T plot per detector with SNN rows; returns the files written."""
    written = []
    rows = result['results']
    for det, (ann, series) in metric_series(result).items():
        if not series:
            continue
        drows = [r for r in rows if r['detector'] == det]
        ylabel = 'top-1' if any('top1' in r for r in drows) else \
            ('mAP' if any('mAP' in r for r in drows) else 'AP@[.5:.95]')
        path = osp.join(out_dir, plot_name(det))
        plot_metric_vs_T(series, path, ann, ylabel=ylabel, title=det)
        written.append(path)
    return written


def write_result_files(result: dict, out_dir: str, plots: bool = True,
                       root: Optional[str] = None) -> None:
    """``results.json``, ``results.csv``, the plots and ``results.md`` (each atomically)."""
    write_text_atomic(json.dumps(result, indent=2), osp.join(out_dir, 'results.json'))
    write_text_atomic(results_csv(result), osp.join(out_dir, 'results.csv'))
    if plots:
        write_plots(result, out_dir)
    write_text_atomic(results_markdown(result, out_dir, root=root),
                      osp.join(out_dir, 'results.md'))


def merge_results(old: dict, new: dict) -> dict:
    """``new`` over ``old``: a row (or conversion time) of ``new`` replaces the one of
    ``old`` with the same detector, method and T; every other row of ``old`` is kept.
    The order is ``old``'s, with rows only ``new`` has after those of their detector."""
    def merged(a: list, b: list) -> list:
        key = lambda r: (r['detector'], r['method'], r['T'])  # noqa: E731
        fresh = {key(r): r for r in b}
        out = [fresh.pop(key(r), r) for r in a]
        for r in b:
            if key(r) in fresh:                 # a row old did not have
                idx = max((i for i, x in enumerate(out) if x['detector'] == r['detector']),
                          default=len(out) - 1)
                out.insert(idx + 1, r)
                del fresh[key(r)]
        return out
    res = dict(old)
    res.update({k: v for k, v in new.items() if k not in ('results', 'conversion_times')})
    res['T'] = sorted(set(old.get('T', [])) | set(new.get('T', [])))
    res['results'] = merged(old.get('results', []), new.get('results', []))
    res['conversion_times'] = merged(old.get('conversion_times', []),
                                     new.get('conversion_times', []))
    res['complete'] = bool(old.get('complete', True) and new.get('complete', True))
    return res


# -- targets -------------------------------------------------------------------------


def find_row(result: dict, detector: str, method: str, T=None) -> Optional[dict]:
    for r in result['results']:
        if r['detector'] == detector and r['method'] == method and r['T'] == T:
            return r
    return None


def metric(result: dict, detector: str, method: str, T=None) -> Optional[float]:
    r = find_row(result, detector, method, T)
    return None if r is None else main_metric(r)


def detectors(result: dict) -> List[str]:
    return list(dict.fromkeys(r['detector'] for r in result['results']))


def fmt_pct(ratio: float, bound: Optional[float] = None) -> str:
    """``ratio`` in % with one decimal, more if rounding would cross ``bound``."""
    for digits in range(1, 6):
        text = f'{100 * ratio:.{digits}f}'
        if bound is None or (float(text) >= 100 * bound) == (ratio >= bound):
            return text + '%'
    return f'{100 * ratio!r}%'


def fmt(v: Optional[float]) -> str:
    return 'not run' if v is None else f'{100 * v:.1f}'


class Row(NamedTuple):
    """One checked target as a table row: ``measured`` in full (the results index),
    ``brief`` in a few words (the README's summary, where ``headline``)."""
    what: str
    target: str
    measured: str
    met: str                    # 'yes', 'no' (point estimates), 'met', 'within noise',
                                # 'missed' (intervals), 'partly not run' or 'not run'
    benchmark: str
    brief: str = ''
    headline: bool = True       # in the README's summary
    current: bool = True        # measured with the newest code version (docs pages show these)


class Measured(NamedTuple):
    """What a target's check found: the full text, the verdict (``True`` / ``False`` on
    point estimates, a :mod:`~snn_det.evaluation.verdict` word on intervals, ``None``
    partly not run), the few words."""
    text: str
    ok: object
    brief: str


class Target(NamedTuple):
    benchmark: str
    what: str
    target: str
    check: Callable[[dict], Measured]


def met_text(ok) -> str:
    if isinstance(ok, str):                 # met / within noise / missed
        return ok
    return {True: 'yes', False: 'no', None: 'partly not run'}[ok]


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


def _ratio_at(method: str, T: int, bound: float, dets: Optional[Sequence[str]] = None):
    def check(result):
        parts, oks, ratios = [], [], []
        for det in dets or detectors(result):
            v, ann = metric(result, det, method, T), metric(result, det, 'ANN')
            if v is None or not ann:
                parts.append(f'{det} not run')
                oks.append(None)
                continue
            text, ok = _ratio_check(find_row(result, det, method, T), v, ann, bound)
            parts.append(f'{det} {fmt(v)} ({text})')
            oks.append(ok)
            ratios.append(v / ann)
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


def _order_at_every_T(methods: Sequence[str], dets: Optional[Sequence[str]] = None):
    def check(result):
        parts, oks = [], []
        for det in dets or detectors(result):
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


def _order_at(methods: Sequence[str], T: int):
    def check(result):
        parts, oks = [], []
        for det in detectors(result):
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


def _best_of(method: str, T: int):
    """``method`` highest of all methods at T (ties: overlapping intervals, or below TIE
    without intervals)."""
    def check(result):
        parts, oks = [], []
        for det in detectors(result):
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


def _best_ratio_at(T: int, bound: float, dets: Optional[Sequence[str]] = None,
                   backbone_scope: bool = False):
    """The best rows at ``T`` against the ANN (of ``dets``; without the fully spiking
    "(full)" rows if ``backbone_scope``)."""
    def check(result):
        parts, oks, best = [], [], []
        for det in dets or detectors(result):
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
            best.append(rows[0][0] / ann)
        return Measured('; '.join(parts), _all(oks), f'best {_span(best, bound)} of the ANN')
    return check


def _ratios_at(method: str, bounds: Dict[int, float]):
    def check(result):
        parts, oks, ratios = [], [], {T: [] for T in bounds}
        for det in detectors(result):
            ann, cells = metric(result, det, 'ANN'), []
            for T, bound in bounds.items():
                v = metric(result, det, method, T)
                if v is None or not ann:
                    cells.append(f'T={T} not run')
                    oks.append(None)
                    continue
                text, ok = _ratio_check(find_row(result, det, method, T), v, ann, bound)
                cells.append(f'T={T} {fmt(v)} ({text})')
                oks.append(ok)
                ratios[T].append(v / ann)
            parts.append(f'{det} ' + ', '.join(cells))
        return Measured('; '.join(parts), _all(oks),
                        ', '.join(f'T={T}: {_span(ratios[T], b)}' for T, b in bounds.items()))
    return check


def _highest_at_every_T(method: str):
    """``method`` at least every other SNN row at each T it was run (no tie margin
    without intervals; with intervals, overlapping ones are a tie: within noise)."""
    def check(result):
        parts, oks = [], []
        for det in detectors(result):
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


def _best_full_ratios(bounds: Dict[int, float], dets: Optional[Sequence[str]] = None):
    """The best fully spiking row ("(full)" methods) at each T against the ANN (of
    ``dets``, the detectors the benchmark converts fully)."""
    def check(result):
        parts, oks, ratios = [], [], {T: [] for T in bounds}
        for det in dets or detectors(result):
            ann = metric(result, det, 'ANN')
            cells = []
            for T, bound in bounds.items():
                rows = sorted(((main_metric(r), r['method'], r) for r in result['results']
                               if r['detector'] == det and r['T'] == T
                               and FULL in r['method']), key=lambda x: x[:2], reverse=True)
                if not rows or not ann:
                    continue
                v, m, row = rows[0]
                text, ok = _ratio_check(row, v, ann, bound)
                cells.append(f'T={T} {m} {fmt(v)} ({text})')
                oks.append(ok)
                ratios[T].append(v / ann)
            if cells:
                parts.append(f'{det}: ' + ', '.join(cells))
            else:
                parts.append(f'{det} not run')
                oks.append(None)
        return Measured('; '.join(parts), _all(oks),
                        ', '.join(f'T={T}: {_span(ratios[T], b)}' for T, b in bounds.items()))
    return check


FULL = '(full'     # '(full)', '(full, signed ReLU)': methods of scope full
#: simulation_speed's fully spiking rows per ReLU neuron: (key in ``full_scope``, label)
FULL_SCOPE_ROWS = {'if': ('rows', ''), 'signed': ('signed_relu_rows', ', signed ReLU')}
TABLE4 = ('Baseline', '+LCP', '+ACP')
TARGETS = [
    Target('baseline_synth', 'Baseline (MMSE/channel + shift), every detector, T=128',
           '>= 90% of the ANN', _ratio_at('MMSE/channel+shift', 128, 0.90)),
    Target('seed001_table4_synth', 'seed 001 Table 4: +ACP >= +LCP >= Baseline',
           'every T (ties < 0.5)', _order_at_every_T(TABLE4)),
    Target('seed001_table4_synth', 'seed 001 Table 4: +ACP at T=32', '>= 90% of the ANN',
           _ratio_at('+ACP', 32, 0.90)),
    Target('seed001_table4_synth', 'seed 001 Table 4 at another input size (256 instead of '
           '320), T=32: Baseline / +LCP / +ACP', 'calibration keeps its gain (ties < 0.5)',
           _order_at([m + ' (rescaled 256)' for m in TABLE4], 32)),
    Target('thresholds_synth', 'thresholds (max / percentile / MMSE x layer / channel x '
           'shift), T=32', 'MMSE/channel + shift best (ties < 0.5)',
           _best_of('mmse/channel+shift', 32)),
    Target('seed001_table3_synth_cls', 'classifier, best three methods at T=16',
           'best >= 98% of the ANN top-1', _best_ratio_at(16, 0.98)),
    Target('seed003_tableX_synth', 'seed 003 Table X: Stage I + II at T=16 / T=8',
           '>= 95% / >= 85% of the ANN', _ratios_at('Stage I + II', {16: 0.95, 8: 0.85})),
    Target('seed003_tableX_synth', 'seed 003 Table X: Stage I + II the best row',
           'every T', _highest_at_every_T('Stage I + II')),
    Target('seed003_tableX_synth', 'fully spiking detectors (scope full): best '
           'method at T=16 / T=8 / T=64', '>= 90% / >= 80% / >= 98% of the ANN',
           _best_full_ratios({16: 0.90, 8: 0.80, 64: 0.98},
                             ['YOLOv3 D53n', 'RetinaNet R18n'])),
    Target('seed001_table4_synth', 'fully spiking RetinaNet: +ACP >= +LCP >= '
           'Baseline (full)', 'every T (ties < 0.5)',
           _order_at_every_T([m + ' (full)' for m in TABLE4], ['RetinaNet R18n'])),
    Target('seed003_tableX_synth', 'ResNet-50 depth (RetinaNet R50n, 49 sites): '
           'best method at T=64, backbone scope', '>= 99% of the ANN',
           _best_ratio_at(64, 0.99, ['RetinaNet R50n'], backbone_scope=True)),
]


def targets_rows(results: Dict[str, dict], targets: Sequence[Target] = TARGETS) -> List[Row]:
    """One :class:`Row` per target (``met``: 'yes' / 'no' / 'partly not run' / 'not run')."""
    out = []
    for t in targets:
        if t.benchmark not in results:
            out.append(Row(t.what, t.target, 'not run', 'not run', t.benchmark, 'not run'))
            continue
        m = t.check(results[t.benchmark])
        out.append(Row(t.what, t.target, m.text, met_text(m.ok), t.benchmark, m.brief))
    return out


def rows_markdown(rows: Sequence[Row], link: Optional[Callable[[str], str]] = None,
                  brief: bool = False) -> str:
    """The rows as a table: what, target, measured (``brief``: in a few words), met, and
    with ``link`` a column linking each row's benchmark."""
    head = '| what | target | measured | met |' + (' from |' if link else '')
    lines = [head, '|---' * (5 if link else 4) + '|']
    for r in rows:
        cells = [r.what, r.target, r.brief if brief and r.brief else r.measured, r.met]
        if link:
            cells.append(f'[{r.benchmark}]({link(r.benchmark)})')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def targets_markdown(results: Dict[str, dict], link: Callable[[str], str] = None,
                     targets: Sequence[Target] = TARGETS) -> str:
    """The targets of the seed papers as a table (measured in full)."""
    return rows_markdown(targets_rows(results, targets), link or (lambda name: name))
