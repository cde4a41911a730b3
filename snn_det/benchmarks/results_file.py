"""A benchmark's results file: rows of a rerun merged into the earlier ones, in the
config's order, written with its tables and plots (:mod:`snn_det.analysis.results`)."""
import json
import os.path as osp
from typing import Optional

from ..analysis.results import write_result_files
from ..utils.provenance import provenance, repo_relative

__all__ = ['finish', 'merge_rows', 'sort_rows', 'time_row']


def time_row(detector: str, method: str, T: int, observe_s: float, per_T: dict) -> dict:
    """One row of a results file's ``conversion_times``: the conversion's seconds for this
    T (observation + its own total) and each timed part of it, rounded; what a conversion
    records beside its timings (e.g. the memory plan of a budgeted run) is left out."""
    return dict(detector=detector, method=method, T=int(T),
                seconds=round(observe_s + per_T['total'], 2),
                **{k: round(v, 2) for k, v in per_T.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})


def merge_rows(old: list, new: list, keep: bool, split: Optional[dict] = None) -> list:
    """Rows of this run replace the same (detector, method, T) of an earlier run; a
    detector rerun in full drops its earlier rows, a partial rerun (``keep``: some
    methods or some T) keeps them, unless they were evaluated on another split (rows
    that record none: ``val``), which cannot share a table with the new ones.  ``split``
    (detector -> split) is that of the new results where ``new`` holds rows that record
    none (conversion times)."""
    new_keys = {(r['detector'], r['method'], r['T']) for r in new}
    split = split or {r['detector']: r.get('split', 'val') for r in new}
    return [r for r in old if (r['detector'], r['method'], r['T']) not in new_keys
            and (keep or r['detector'] not in split)
            and split.get(r['detector'], r.get('split', 'val')) == r.get('split', 'val')] + new


def sort_rows(rows: list, order: dict) -> list:
    """Config order: detectors, then ANN, then methods (a source's ANN before its first
    method), then T."""
    dets, methods = order['detectors'], order['methods']

    def rank(r):
        d = dets.index(r['detector']) if r['detector'] in dets else len(dets)
        m = r['method']
        base = m.split(' (')[0]
        if m == 'ANN':
            k = -1.0
        elif m in methods:
            k = float(methods.index(m))
        elif base in methods:                  # e.g. '+LCP (rescaled 256)'
            k = len(methods) + methods.index(base) + 0.5
        elif m.startswith('ANN'):              # 'ANN (rescaled 256)'
            k = float(len(methods))
        else:                                  # '<source config> (its ANN)'
            k = -0.5
        return d, k, -1 if r['T'] is None else r['T']
    return sorted(rows, key=rank)


def finish(name, config_path, T_list, seed, rows, times, work_dir, keep, order,
            partial=False) -> dict:
    """Write results, merged with the rows of an earlier run that this one did not redo."""
    old_path = osp.join(work_dir, 'results.json')
    if osp.isfile(old_path):
        old = json.load(open(old_path))
        for r in old['results'] + old['conversion_times']:   # kept rows keep their split
            r.setdefault('split', old.get('split') or 'val')
        split = {r['detector']: r.get('split', 'val') for r in rows}
        rows = merge_rows(old['results'], rows, keep)
        times = merge_rows(old['conversion_times'], times, keep, split)
    rows, times = sort_rows(rows, order), sort_rows(times, order)
    result = dict(name=name, config=repo_relative(config_path), T=T_list, seed=seed,
                  **order.get('protocol', {}),
                  results=rows, conversion_times=times, complete=not partial,
                  provenance=provenance())
    _write(result, work_dir)
    return result


def _write(result: dict, work_dir: str) -> None:
    from mmengine.dist import get_rank
    if get_rank() != 0:         # every rank measured the same rows; rank 0 writes them
        return
    write_result_files(result, work_dir)
