"""Benchmark results as data: the files, the tables and the targets made from them.

A benchmark's ``results.json`` is the source of truth::

    dict(name=..., config=..., T=[...], seed=0, complete=True,
         results=[dict(detector=..., method=..., T=None | int, AP=0.52, ..., seconds=...)],
         conversion_times=[dict(detector=..., method=..., T=..., seconds=..., ...)])

Metrics are fractions (0.528, not 52.8).  :func:`write_result_files` writes
``results.{json,csv,md}`` and the metric-vs-T plots from it;
:func:`results_markdown` renders the tables alone; :mod:`.targets` checks the targets
a benchmark config states against the rows.

Rows of the evaluation protocol (``docs/evaluation.md``) record their ``split`` and
``images`` and carry 95 % bootstrap intervals (``AP_ci``; SNN rows ``ratio`` and
``ratio_ci``, paired with their ANN).  The tables show them (``51.1 [49.6, 53.1]``) and
judge targets by them (:mod:`.targets`).

Longer than most modules (~380 lines): the markdown, CSV and plots of one results file
are written from the same row helpers.
"""
import math
import csv
import io
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from .metrics import main_metric, main_metric_key, plot_metric_vs_T
from ..evaluation import interval_text
from ..utils.checkpoint import write_text_atomic

METRIC_ORDER = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'mAP', 'top1', 'top5')
#: differences below this (in metric points, i.e. 0.5 AP) count as ties, between rows
#: without intervals (rows with intervals tie when their intervals overlap)
TIE = 0.005


def _finite(ci) -> bool:
    return bool(ci) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ci)


def ap_ci(row: Optional[dict]):
    """The 95 % interval of the row's main metric (COCO AP's ``AP_ci``, a classifier's
    ``top1_ci``), or ``None`` (VOC mAP has none)."""
    ci = None if row is None else row.get(f'{main_metric_key(row)}_ci')
    return ci if _finite(ci) else None


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
    with_ci = [r['bootstrap'] for r in rows if r.get('bootstrap') and ap_ci(r)]
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
    """One line: the commit, versions, date and machine the results were measured with."""
    p = result.get('provenance')
    if not p:
        return ('Provenance: not recorded (measured before results files kept it; the '
                "rows' dates are in results.json where present).")
    v = p.get('versions', {})
    vers = ', '.join(f'{k} {v[k]}' for k in ('torch', 'mmcv', 'mmdet', 'mmengine',
                                               'spikingjelly') if k in v)
    where = f"; {p['machine']}" if p.get('machine') else ''
    if p.get('cpu'):
        where += f" ({p['cpu']})"
    return (f"Provenance: commit `{p.get('commit', '?')[:12]}`, {vers}; "
            f"{p.get('date', '?')}{where}.")


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
        main = main_metric_key(drows)
        keys = [k for k in METRIC_ORDER if any(k in r for r in drows)]    # this model's
        lines += ['<details><summary>all metrics</summary>', '',
                  '| method | T | ' + ' | '.join(keys)
                  + (f' | {main} 95% CI | % of ANN | 95% CI' if cis else '')
                  + ' | eval s | convert s |',
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
        lines += energy_lines(drows, det, plot_dir, image_prefix)
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


def energy_plot_name(detector: str) -> str:
    return f'{_slug(detector)}_metric_vs_energy.png'


def energy_lines(drows: List[dict], det: str, plot_dir: Optional[str],
                  image_prefix: str) -> List[str]:
    """Rows measured with ``energy``: the whole model's energy per image beside the
    ANN's (the same formula and input), and the metric-vs-energy plot."""
    rows = [r for r in drows if r.get('energy')]
    if not rows:
        return []
    e0 = rows[0]['energy']
    lines = [f'Energy per image (whole model, on {e0["images"]} calibration images; '
             f'4.6 pJ/MAC, 0.9 pJ/SOP, memory traffic not counted): ANN {e0["ann_mJ"]:.3f} mJ.',
             '', '| method | T | main metric | SNN MACs (M) | SNN SOPs (M) | energy (mJ) | '
             '/ ANN |', '|---|---|---|---|---|---|---|']
    for r in rows:
        e = r['energy']
        lines.append(f'| {r["method"]} | {r["T"]} | {100 * main_metric(r):.1f} | '
                     f'{e["snn_macs_M"]:.1f} | {e["snn_sops_M"]:.1f} | {e["snn_mJ"]:.3f} | '
                     f'{e["ratio"]:.2f}x |')
    lines.append('')
    png = energy_plot_name(det)
    if plot_dir is None or osp.isfile(osp.join(plot_dir, png)):
        lines += [f'![{det}: metric against energy]({image_prefix}{png})', '']
    return lines


def results_csv(result: dict) -> str:
    rows = result['results']
    keys = [k for k in METRIC_ORDER if any(k in r for r in rows)]
    buf = io.StringIO()
    w = csv.writer(buf)
    errors = any(r.get('error') for r in rows)     # rows of peers that did not convert
    splits = any(r.get('split') for r in rows)     # rows of the evaluation protocol
    cis = any(ap_ci(r) for r in rows)
    main = main_metric_key(rows)

    def f4(v):
        return '' if v is None else f'{v:.4f}'
    w.writerow(['detector', 'method', 'T'] + keys + ['eval_seconds', 'convert_seconds']
               + (['split', 'images'] if splits else [])
               + ([f'{main}_ci_lo', f'{main}_ci_hi', 'ratio', 'ratio_ci_lo', 'ratio_ci_hi']
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
        energy = [r for r in drows if r.get('energy') and r['T']]
        if energy and ann is not None:
            from .energy import plot_metric_vs_energy
            points = {}
            for r in energy:
                points.setdefault(r['method'], []).append(
                    (r['energy']['snn_mJ'], main_metric(r), r['T']))
            path = osp.join(out_dir, energy_plot_name(det))
            plot_metric_vs_energy(points, (energy[0]['energy']['ann_mJ'], ann), path,
                                  ylabel=ylabel, title=det)
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


FULL = '(full'     # '(full)', '(full, signed ReLU)': methods of scope full
#: simulation_speed's fully spiking rows per ReLU neuron: (key in ``full_scope``, label)
FULL_SCOPE_ROWS = {'if': ('rows', ''), 'signed': ('signed_relu_rows', ', signed ReLU')}
