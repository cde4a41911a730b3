"""Config-driven benchmark reruns: detectors x conversion methods x T.

A benchmark config holds one dict ``benchmark``::

    benchmark = dict(
        name='seed001_table4_synth', seed=0, T=[16, 32, 64, 128],
        calib_images=64, calib_batch_size=8, val_images=None, chunk_size=None,
        split='test',                 # the split evaluated (docs/evaluation.md): 'test' | 'val'
        bootstrap=1000, bootstrap_seed=0,   # 95 % intervals over its images (0: none)
        detectors=[dict(name='RetinaNet', config=..., checkpoint=...,
                        cfg_options=None,      # optional overrides of that config
                        calib_images=None,     # optional: its own calib_images / _batch_size
                        split=None)],          # optional: its own split (below)
        methods=[dict(name='Baseline', conversion=dict(threshold='max', ...)),
                 # a method may convert another trained model of a detector, e.g. the
                 # QC fine-tuned ANN of seed 003 Stage I:
                 dict(name='Stage I + II', conversion=dict(calib='cc+fc'),
                      sources={'RetinaNet': dict(config=..., checkpoint=...)},
                      T=[4, 8, 16]),  # optional: only these T (or {detector: [T, ...]})
                 # or one source model per T (seed 003 fine-tunes a QC-ANN per T):
                 # sources={'RetinaNet': {4: dict(config=..., checkpoint=...), 8: ...}}
                 # or another library's conversion of the same backbone (snn_det.peers),
                 # read out at every T of one simulation; a network it cannot convert
                 # gives one row with its error:
                 dict(name='SpikingJelly rate (max)',
                      peer=dict(type='spikingjelly', recipe='rate', mode='max')),
                 # options of one detector over the method's (e.g. BPTT's loss: MSE for
                 # detection, KL for a classifier)
                 dict(name='Stage II', conversion=dict(calib='cc+fc', fc_loss='mse'),
                      conversion_for={'ResNet-18n classifier': dict(fc_loss='kl')}),
                 ...],
        rescaled=dict(scale=(256, 256)),          # optional extra evaluation
        error_plot=dict(T=32, methods=['Baseline', '+LCP', '+ACP'], images=8),
    )

Every detector is evaluated as an ANN once, then each method is converted
(thresholds and calibrations for every T, on the same seeded calibration
images, drawn from the train split) and evaluated at every T with the config's
own metric.

Evaluation protocol (``docs/evaluation.md``): every detector is evaluated on
``split`` (default ``'test'``, the held-out images; :func:`~snn_det.evaluation.use_split`
points its ``test_dataloader`` there), on all of its images (``val_images=N`` limits
only a ``'val'`` run to its first N images, ``test_images=N`` a ``'test'`` run).
A detector whose test set ``use_split`` cannot switch (not ``instances_<split>.json``
/ ``ImageSets/Main/<split>.txt``, e.g. a classifier's file lists) must name its
``split`` itself; its config and ``cfg_options`` then choose the images and the name
is what the tables show.  With ``bootstrap > 0`` each COCO-style row gets 95 %
bootstrap intervals (``AP_ci``, ``AP50_ci``) and each SNN row the paired SNN/ANN
ratio (``ratio``, ``ratio_ci``) against the ANN row of its detector (a rescaled row:
the rescaled ANN), all on the same seeded resamples
(:func:`~snn_det.evaluation.add_intervals`).  Every row records ``split`` and
``images`` (how many were evaluated).  Results go to
``work_dirs/benchmarks/<name>/``: ``results.md``, ``results.json``,
``results.csv`` and ``<detector>_metric_vs_T.png`` (plus the per-layer error plot
and its data, ``<detector>_layer_error_T<T>.json``).  A rerun restricted to some
detectors, methods or T keeps the rows (and error boxes) of everything else.

Longer than most modules (~420 lines): the run loop, its sources, scopes and peers,
and the extras that reuse the converted nets (per-layer error, rescaled inputs) share
the runners and the seeded calibration batches of one detector.
"""
import json
import os
import os.path as osp
import time
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..conversion.config import ConversionConfig
from ..evaluation import (EvaluationRecorder, SPLITS, add_intervals, attach_recorder,
                          use_split)
from ..pipeline import convert_backbone
from ..apis.calib_data import build_calib_batches
from ..apis.dist import prepare_launcher
from ..apis.convert import check_T_list, unwrap, wrap_backbone_cfg
from ..apis.evaluate import main_metric, restrict_metrics_to_dataset, simplify_metrics
from ..utils.checkpoint import write_text_atomic
from .results_file import finish, time_row

#: resamples of the bootstrap intervals unless the benchmark sets ``bootstrap``
DEFAULT_BOOTSTRAP = 1000


def split_of(det: dict, bench: dict) -> str:
    """The split ``det`` is evaluated on: its own ``split``, else the benchmark's
    (default ``'test'``)."""
    split = det.get('split') or bench.get('split', 'test')
    if not isinstance(split, str) or not split:
        raise ValueError(f"{det['name']}: split must be a name such as 'test', got {split!r}")
    return split


def _point_at_split(cfg, det: dict, bench: dict) -> str:
    """Point ``cfg``'s test set at the detector's split (module docstring); its name."""
    split = split_of(det, bench)
    if split not in SPLITS and not det.get('split'):
        raise ValueError(f'benchmark split {split!r} is not one of {SPLITS}')
    try:
        use_split(cfg, split)
    except ValueError as e:
        if not det.get('split'):       # the default cannot be applied: say what to do
            raise ValueError(f"{det['name']}: {e}; name the split this detector's config "
                             f"evaluates with split=... in its benchmark entry") from None
    return split


#: conversion options that shape the spiking graph itself (its sites), so a model built
#: for one value cannot be converted with another
GRAPH_OPTIONS = ('spiking_fpn',)


def _build_runner(det: dict, bench: dict, work_dir: str, T0: int, cfg_options=None,
                  scope: str = 'backbone', graph_options: Optional[dict] = None) -> tuple:
    cfg = Config.fromfile(det['config'])
    prepare_launcher(cfg, bench.get('launcher', 'none'))
    if det.get('cfg_options'):              # e.g. another data_root for this detector
        cfg.merge_from_dict(det['cfg_options'])
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    split = _point_at_split(cfg, det, bench)
    wrap_backbone_cfg(cfg, T0, dict(graph_options or {}), bench.get('chunk_size'), scope)
    cfg.work_dir = osp.join(work_dir, 'logs', det['name'].replace(' ', '_'))
    cfg.load_from = det['checkpoint']
    cfg.resume = False
    cfg.randomness = dict(seed=bench.get('seed', 0), deterministic=False)
    n_images = bench.get('val_images' if split == 'val' else 'test_images')
    if n_images:
        cfg.test_dataloader.dataset.indices = int(n_images)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1000)
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    restrict_metrics_to_dataset(runner)
    if bench.get('bootstrap', DEFAULT_BOOTSTRAP) > 0:
        attach_recorder(runner.test_evaluator)    # None for VOC metrics
    runner.benchmark_split = split
    return cfg, runner


def _recorder(evaluator):
    return next((m for m in evaluator.metrics if isinstance(m, EvaluationRecorder)), None)


def _evaluated(runner) -> dict:
    """``split`` and ``images`` of a row measured with ``runner``."""
    return dict(split=getattr(runner, 'benchmark_split', None),
                images=len(runner.test_dataloader.dataset))


def _with_intervals(row: dict, evaluation, ann_evaluation, bench: dict) -> dict:
    """``row`` with the interval keys of :func:`~snn_det.evaluation.add_intervals`: 95 %
    intervals of its AP / AP50 and, when ``ann_evaluation`` is given, the SNN/ANN ratio
    paired with the ANN on the same resamples (no ``evaluation``: unchanged)."""
    n = bench.get('bootstrap', DEFAULT_BOOTSTRAP)
    if evaluation is None or n <= 0:
        return row
    pair = [dict(model='ANN'), dict(model='SNN')]
    evs = [ann_evaluation, evaluation]
    if ann_evaluation is None or ann_evaluation is evaluation \
            or ann_evaluation.img_ids != evaluation.img_ids:     # not paired: no ratio
        pair, evs = pair[1:], evs[1:]
    add_intervals(pair, evs, n, bench.get('bootstrap_seed', 0))
    row.update({k: v for k, v in pair[-1].items() if k != 'model'})
    return row


def _test(runner, mode: str, T=None) -> tuple:
    """``(metrics, seconds, evaluation)``: the per-image COCO evaluation when the
    runner has a recorder (its time not counted in ``seconds``), else ``None``."""
    bb = unwrap(runner.model).backbone
    bb.set_mode(mode, T)
    rec = _recorder(runner.test_evaluator)
    t0 = time.perf_counter()
    m = simplify_metrics(runner.test())
    evaluation, extra = rec.take() if rec is not None else (None, 0.0)
    return dict(m, **_evaluated(runner)), time.perf_counter() - t0 - extra, evaluation


def _rescaled_cfg_options(scale) -> dict:
    return {'test_dataloader.dataset.pipeline.1.scale': tuple(scale)}


def _sources_by_T(method: dict, det: dict, T_list: List[int]) -> list:
    """[(source detector dict or None, [T, ...]), ...] for one method and detector.

    ``None`` is the detector's own model.  ``sources[det]`` is one
    ``dict(config=..., checkpoint=...)`` or a ``{T: dict(...)}`` per T; a T with no
    entry of its own is skipped.
    """
    src = (method.get('sources') or {}).get(det['name'])
    if src is None:
        return [(None, T_list)]
    if 'config' in src:
        return [(dict(det, **src), T_list)]
    per_T = {int(t): v for t, v in src.items()}
    return [(dict(det, **per_T[t]), [t]) for t in T_list if t in per_T]


def method_conversion(method: dict, detector: str) -> dict:
    """The conversion options of ``method`` for ``detector``: its ``conversion`` updated
    by ``conversion_for[detector]`` where it has one."""
    options = dict(method.get('conversion') or {})
    options.update((method.get('conversion_for') or {}).get(detector) or {})
    return options


def run_benchmark(config_path: str, out_root: str = 'work_dirs/benchmarks',
                  only_detectors: List[str] = None, only_methods: List[str] = None,
                  only_T: List[int] = None, launcher: str = 'none') -> dict:
    """Run a benchmark config; returns the results dict (also written to files).

    ``only_detectors`` / ``only_methods`` / ``only_T`` rerun part of it; the rows of
    the rest are kept from the existing results files.
    """
    bench = Config.fromfile(config_path).benchmark
    bench['launcher'] = launcher       # under torchrun: images split, rows equal on all ranks
    names = [m['name'] for m in bench['methods']]
    unknown = [m for m in (only_methods or []) if m not in names]
    if unknown:
        raise KeyError(f'methods {unknown} are not in {config_path}; it has {names}')
    unknown = [d for d in (only_detectors or [])
               if d not in [x['name'] for x in bench['detectors']]]
    if unknown:
        raise KeyError(f'detectors {unknown} are not in {config_path}')
    order = dict(detectors=[d['name'] for d in bench['detectors']], methods=names,
                 protocol=dict(split=bench.get('split', 'test'),
                               bootstrap=dict(resamples=bench.get('bootstrap',
                                                                  DEFAULT_BOOTSTRAP),
                                              seed=bench.get('bootstrap_seed', 0))))
    name = bench.get('name', osp.splitext(osp.basename(config_path))[0])
    T_list = check_T_list(bench['T'])
    if only_T:
        only_T = check_T_list(only_T)
        unknown = [t for t in only_T if t not in T_list]
        if unknown:
            raise KeyError(f'T {unknown} are not in {config_path}; it has {T_list}')
    keep = bool(only_methods or only_T)       # a partial rerun keeps the detector's other rows
    work_dir = osp.join(out_root, name)
    os.makedirs(work_dir, exist_ok=True)
    seed = bench.get('seed', 0)
    rows, times = [], []
    for det in bench['detectors']:
        if only_detectors and det['name'] not in only_detectors:
            continue
        cfg, runner = _build_runner(det, bench, work_dir, T_list[0])
        model = unwrap(runner.model)
        model.eval()
        bb = model.backbone
        torch.manual_seed(seed)
        batches = build_calib_batches(cfg, model,    # a detector may name its own number
                                      det.get('calib_images', bench.get('calib_images', 64)),
                                      det.get('calib_batch_size',
                                              bench.get('calib_batch_size', 8)), seed)
        ann, secs, ann_ev = _test(runner, 'ann')
        rows.append(_with_intervals(dict(detector=det['name'], method='ANN', T=None,
                                         seconds=round(secs, 1), **ann), ann_ev, None, bench))
        nets, source_runners, ann_rows = {}, {}, set()
        for method in bench['methods']:
            if only_methods and method['name'] not in only_methods:
                continue
            if method.get('sources') is not None and det['name'] not in method['sources']:
                continue                       # this method does not apply to this detector
            if method.get('detectors') is not None and det['name'] not in method['detectors']:
                continue
            m_T = method.get('T', T_list)     # a method may skip some T (per detector)
            m_T = check_T_list(m_T.get(det['name'], T_list) if isinstance(m_T, dict) else m_T)
            if only_T:
                m_T = [t for t in m_T if t in only_T]
            if method.get('peer') is not None:   # another library's conversion (snn_det.peers)
                from ..peers.evaluate import evaluate_peer
                bb.snn.clear()
                recs = {}
                new, tim = evaluate_peer(runner, batches, method['peer'], m_T, det['name'],
                                         method['name'],
                                         on_loop=lambda loop: recs.update(_loop_recorders(
                                             loop, bench)))
                rows += _peer_rows(new, recs, runner, ann_ev, bench)
                times += tim
                finish(name, config_path, T_list, seed, rows, times, work_dir, keep, order,
                        partial=True)
                continue
            options = method_conversion(method, det['name'])
            conv = ConversionConfig.from_dict(dict(options, seed=seed))
            scope = method.get('scope', bench.get('scope', 'backbone'))
            graph_opts = {k: v for k, v in options.items() if k in GRAPH_OPTIONS and v}
            for src, src_T in _sources_by_T(method, det, m_T):
                m_runner, m_bb, m_batches = runner, bb, batches
                if src is not None or scope != 'backbone' or graph_opts:
                    # another trained model of this detector, another spiking scope or
                    # another spiking graph (e.g. neurons on FPN's currents)
                    model_src = src if src is not None else det
                    key = (model_src['config'], model_src['checkpoint'], scope,
                           tuple(sorted(graph_opts.items())))
                    if key not in source_runners:
                        _, src_runner = _build_runner(model_src, bench, work_dir, T_list[0],
                                                      scope=scope, graph_options=graph_opts)
                        unwrap(src_runner.model).eval()
                        if src is not None and key[:2] not in ann_rows:
                            m_ann, secs, src_ev = _test(src_runner, 'ann')
                            rows.append(_with_intervals(dict(
                                detector=det['name'],
                                method=f'{osp.basename(src["config"])} (its ANN)',
                                T=None, seconds=round(secs, 1), **m_ann), src_ev, None, bench))
                            ann_rows.add(key[:2])
                        source_runners[key] = src_runner
                    m_runner = source_runners[key]
                    m_bb = unwrap(m_runner.model).backbone
                m_bb.snn.clear()
                for T in src_T:
                    # one T at a time, evaluated at once: a row is on disk as soon as its
                    # T is done (the observation is seeded: the same thresholds every time)
                    tim = convert_backbone(m_bb, m_batches, [T], conv, bench.get('chunk_size'),
                                           progress=False)
                    if src is None:            # this detector's own model, any scope
                        nets.setdefault(method['name'], {})[T] = m_bb.snn[f'T{T}']
                    conv_time = tim['observe'] + tim['per_T'][T]['total']
                    times.append(time_row(det['name'], method['name'], T, tim['observe'],
                                          tim['per_T'][T]))
                    m, secs, ev = _test(m_runner, 'snn', T)
                    rows.append(_with_intervals(dict(
                        detector=det['name'], method=method['name'], T=T,
                        seconds=round(secs, 1), convert_seconds=round(conv_time, 1), **m),
                        ev, ann_ev, bench))
                    if bench.get('energy'):      # per image, on calibration images
                        rows[-1]['energy'] = _energy(m_runner, m_bb, m_batches, T, scope,
                                                     bench)
                    print(f'[{name}] {det["name"]} | {method["name"]} | T={T}: '
                          f'{main_metric(m):.4f} (ANN {main_metric(ann):.4f})', flush=True)
                    # every row is on disk as soon as it is measured: a run killed later
                    # (memory, time) keeps it
                    finish(name, config_path, T_list, seed, rows, times, work_dir, keep, order,
                            partial=True)
        _extras(bench, det, runner, bb, batches, nets, rows, work_dir, T_list, seed)
        del runner
    return finish(name, config_path, T_list, seed, rows, times, work_dir, keep, order)


def _energy(runner, bb, batches, T: int, scope: str, bench: dict) -> dict:
    """The row's energy per image against the ANN's (:mod:`~snn_det.analysis.energy`), on
    the first ``energy.images`` calibration images (the train split: firing rates do not
    depend on the labels), both counted on the same input."""
    from ..analysis.energy import ann_macs, compare, energy_row
    from ..analysis.firing import measure_firing
    x = batches[0][:bench['energy'].get('images', 2)]
    firing = measure_firing(bb.snn[f'T{T}'], [x], T, bench.get('chunk_size'))
    row = energy_row(compare(ann_macs(unwrap(runner.model), [x]), firing, scope))
    return dict(row, images=int(x.shape[0]))


def _loop_recorders(loop, bench: dict) -> dict:
    """A recorder beside each T's evaluator of a ``MultiTTestLoop`` (``{T: recorder}``)."""
    if bench.get('bootstrap', DEFAULT_BOOTSTRAP) <= 0:
        return {}
    recs = {T: attach_recorder(ev) for T, ev in loop.evaluators.items()}
    return {T: r for T, r in recs.items() if r is not None}


def _peer_rows(rows: list, recs: dict, runner, ann_ev, bench: dict) -> list:
    """A peer's rows with ``split``, ``images`` and their intervals; the time of the
    recorders' own evaluation is not counted in ``seconds``."""
    taken = {T: r.take() for T, r in recs.items()}
    extra = sum(s for _, s in taken.values())
    out = []
    for r in rows:
        r = dict(r, **_evaluated(runner))
        if r.get('T') in taken and 'error' not in r:
            r['seconds'] = round(max(r['seconds'] - extra, 0.0), 1)
            r = _with_intervals(r, taken[r['T']][0], ann_ev, bench)
        out.append(r)
    return out


def _extras(bench, det, runner, bb, batches, nets, rows, work_dir, T_list, seed):
    """Optional: evaluation at another input scale, per-layer error boxplots.

    Only the methods and T converted in this run are measured; the error boxes of
    the other methods are read back from the plot's JSON, so a partial rerun keeps them.
    """
    from ..analysis.layer_error import plot_relative_errors, relative_errors
    ep = bench.get('error_plot')
    if ep:
        T = ep.get('T', T_list[0])
        imgs = [b for b in batches][:max(1, ep.get('images', 8) // batches[0].shape[0])]
        # one plot per scope: the fully spiking methods ("(full)") have the neck / head sites
        for suffix, in_plot in (('', lambda m: '(full)' not in m),
                                ('_full', lambda m: '(full)' in m)):
            methods = [m for m in ep.get('methods', list(nets)) if in_plot(m)]
            if not methods:
                continue
            stem = osp.join(work_dir, f'{det["name"].replace(" ", "_")}_layer_error_T{T}'
                                      f'{suffix}')
            errs = {}
            if osp.isfile(stem + '.json'):
                errs = {m: {k: torch.tensor(v) for k, v in e.items()}
                        for m, e in json.load(open(stem + '.json')).items()}
            new = False
            for mname in methods:
                if mname in nets and T in nets[mname]:
                    net = nets[mname][T]
                    errs[mname] = relative_errors(net.graph, net, imgs, T)
                    new = True
            errs = {m: errs[m] for m in methods if m in errs}
            from mmengine.dist import get_rank
            if new and errs and get_rank() == 0:
                write_text_atomic(json.dumps({m: {k: v.tolist() for k, v in e.items()}
                                              for m, e in errs.items()}), stem + '.json')
                plot_relative_errors(errs, stem + '.png', f'{det["name"]}: per-layer relative '
                                     f'error, T={T}{" (fully spiking)" if suffix else ""}')
    rs = bench.get('rescaled')
    todo = [(m, T) for m in (rs or {}).get('methods', list(nets))
            for T in (rs or {}).get('T', T_list) if T in nets.get(m, {})]
    if rs and todo:
        # a separate runner: dataloader workers hold their own copy of the pipeline
        _, rs_runner = _build_runner(det, bench, work_dir, T_list[0],
                                     _rescaled_cfg_options(rs['scale']))
        rs_bb = unwrap(rs_runner.model).backbone
        tag = f'rescaled {rs["scale"][0]}'
        ann, secs, rs_ann_ev = _test(rs_runner, 'ann')
        rows.append(_with_intervals(dict(detector=det['name'], method=f'ANN ({tag})', T=None,
                                         seconds=round(secs, 1), **ann), rs_ann_ev, None,
                                    bench))
        for mname, T in todo:
            rs_bb.snn.clear()
            rs_bb.add_spiking_net(nets[mname][T])
            m, secs, ev = _test(rs_runner, 'snn', T)
            rows.append(_with_intervals(dict(detector=det['name'], method=f'{mname} ({tag})',
                                             T=T, seconds=round(secs, 1), **m), ev, rs_ann_ev,
                                        bench))
