"""Evaluate the ANN and the SNN at each T with the runner's own test loop and metric."""
import json
import time
from typing import Dict, List, Optional, Sequence

from ..analysis.metrics import (COCO_KEYS, PERCENT_KEYS, SHORT, main_metric,  # noqa: F401
                               plot_metric_vs_T, simplify_metrics)
from ..analysis.tables import format_table  # noqa: F401  (tools import it from here)
from ..engine.evaluators import restrict_evaluator_to_dataset
from ..utils.checkpoint import write_text_atomic
from ..utils.wrappers import unwrap

def restrict_metrics_to_dataset(runner) -> None:
    """:func:`restrict_evaluator_to_dataset` for the runner's test evaluator."""
    restrict_evaluator_to_dataset(runner.test_evaluator, runner.test_dataloader.dataset)


def shared_T_groups(backbone, T_list: Sequence[int]) -> List[List[int]]:
    """``T_list`` grouped by the converted network each T uses, in the order given."""
    groups: Dict[int, List[int]] = {}
    for T in T_list:
        groups.setdefault(id(backbone.spiking_net(T)), []).append(T)
    return list(groups.values())


def evaluate_per_T(runner, T_list: Sequence[int], include_ann: bool = True,
                   logger=None, share_simulation: bool = True, bootstrap: int = 0,
                   bootstrap_seed: int = 0) -> List[dict]:
    """Evaluate the ANN and the SNN at each T; one row each.

    T that share a converted network are read out of one simulation to the largest
    of them (:class:`~snn_det.engine.MultiTTestLoop`; ``share_simulation=False``
    runs ``runner.test()`` once per T instead).  Their rows carry the time of the
    shared pass and ``shared_pass`` (the T read out of it).

    ``bootstrap > 0`` (COCO-style metrics and classifiers' top-1) adds 95 % intervals
    of AP and AP50 (top-1) and the SNN/ANN ratio with its paired interval over
    ``bootstrap`` seeded
    resamples of the test images (:mod:`snn_det.evaluation.intervals`); the time of
    that extra per-image evaluation is not counted in ``seconds``.
    """
    from ..engine.multi_t_test_loop import MultiTTestLoop
    from ..evaluation import add_intervals, attach_recorder, detach_recorder
    restrict_metrics_to_dataset(runner)
    backbone = unwrap(runner.model).backbone
    recorder = attach_recorder(runner.test_evaluator) if bootstrap > 0 else None
    evaluations = {}

    def _recorded(key, rec) -> float:
        """Keep ``rec``'s evaluation under ``key``; the seconds it took."""
        if rec is None:
            return 0.0
        evaluations[key], seconds = rec.take()
        return seconds

    rows = []
    try:
        if include_ann:
            backbone.set_mode('ann')
            t0 = time.perf_counter()
            metrics = runner.test()
            extra = _recorded('ANN', recorder)
            rows.append(dict(model='ANN', T=None, calib_T=None,
                             seconds=round(time.perf_counter() - t0 - extra, 2),
                             **simplify_metrics(metrics)))
        by_T = {}
        groups = shared_T_groups(backbone, T_list) if T_list else []
        for group in groups:
            if share_simulation and len(group) > 1:
                backbone.set_mode('snn', group[0])
                loop = MultiTTestLoop(runner, group)
                recs = {T: attach_recorder(ev) if bootstrap > 0 else None
                        for T, ev in loop.evaluators.items()}
                t0 = time.perf_counter()
                results = loop.run()
                extra = sum(_recorded(T, recs[T]) for T in group)
                timed = {T: (round(time.perf_counter() - t0 - extra, 2),
                             dict(shared_pass=sorted(group))) for T in group}
            else:
                results, timed = {}, {}
                for T in group:
                    backbone.set_mode('snn', T)
                    t0 = time.perf_counter()
                    results[T] = runner.test()
                    extra = _recorded(T, recorder)
                    timed[T] = (round(time.perf_counter() - t0 - extra, 2), {})
            for T in group:
                seconds, extra = timed[T]
                by_T[T] = dict(model='SNN', T=T, calib_T=backbone.spiking_net(T).num_steps,
                               seconds=seconds, **extra, **simplify_metrics(results[T]))
        rows += [by_T[T] for T in T_list]
    finally:
        if recorder is not None:
            detach_recorder(runner.test_evaluator)
    backbone.set_mode('snn' if T_list else 'ann', T_list[0] if T_list else None)
    if bootstrap > 0:
        keys = ['ANN' if r['model'] == 'ANN' else r['T'] for r in rows]
        add_intervals(rows, [evaluations.get(k) for k in keys], bootstrap, bootstrap_seed)
        _share_from_rank0(rows)
    return rows


def _share_from_rank0(rows: List[dict]) -> None:
    """Give every rank rank 0's rows (the intervals are computed where the results are
    gathered, on rank 0)."""
    from mmengine.dist import broadcast_object_list, get_rank, get_world_size
    if get_world_size() > 1:
        box = [rows if get_rank() == 0 else None]
        broadcast_object_list(box)
        rows[:] = box[0]


def save_rows(rows: List[dict], path: str, extra: Optional[dict] = None) -> None:
    payload = dict(results=rows, **(extra or {}))
    write_text_atomic(json.dumps(payload, indent=2), path)
