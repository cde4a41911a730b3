"""Memory and time of conversion and simulation at real scale (resources, not accuracy).

    python tools/scale_benchmark.py configs/benchmarks/scale_r50_coco.py
        [--detectors NAME ...] [--runs I ...] [--max-sites N] [--device cuda]
        [--out-root docs/results] [--render]

For every detector of the config and every run (calibration images x T), a fresh
process builds the detector with random (seeded) weights, collects the calibration
images through the config's own pipeline, and converts the backbone (``convert``)
or simulates one image through the whole detector (``simulate``), or times the
lower bound of LCP's passes on one image (``bound``: the converted backbone's
simulation and its neurons-free copy against T ANN forwards).  Reported per
run: peak RSS of the process and of the phase alone, the calibration cache's
peak RAM and disk, time by part (data, observe, thresholds, each calibration
step, simulation) and the compute floor measured in the same process: calibration
images x T x one ANN backbone forward.  ``--max-sites N`` calibrates only the
first N spiking sites (the stride-4 stage of a ResNet holds the largest tensors
and so the peak memory); such rows say so.  Results are merged into
``<out-root>/<name>/results.{json,md}`` (rows of runs not rerun are kept).

``--device cuda`` runs the model, the images and every calibration pass on the GPU,
as a user converting on one GPU would; such rows also report the GPU's peak memory
(``torch.cuda.max_memory_allocated``) and are kept apart from the CPU rows (their own
table; issue 12's targets are the CPU's).  Times on the GPU are taken after
``torch.cuda.synchronize``.
"""
import argparse
import cProfile
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))

from snn_det.utils.resources import peak_rss_gib as _peak_gib  # noqa: E402
from snn_det.utils.resources import reset_peak_rss as _reset_peak  # noqa: E402
from snn_det.utils.resources import rss_gib  # noqa: E402


#: the results' header (rewritten by every run and by --render)
NOTE = ('Random-weight R50 detectors and generated images at 800x1333: this measures memory '
        'and time, not accuracy. Peak RSS is the whole process (model, data, calibration); '
        'the calibration / simulation peak is that phase alone. The floor is calibration '
        'images x T x one ANN backbone forward, measured in the same process: "floor" with '
        'the faster of the forwards timed before and after calibration, "floor in run" with '
        'the median of the forwards timed between its sites (the machine\'s speed while it '
        'calibrated; runs before 2026-12-06 did not time them). From code ff179ed2ec on, '
        'the floor\'s ANN forwards run with the memory reuse calibration runs with (freed '
        'large blocks serve the next request of their size); older rows timed them without '
        'it, each forward\'s large tensors fresh pages for the kernel to zero, which made '
        'their floor slower. From code 186f1c4dd1 on, calibration keeps convolution products '
        'between LCP\'s two passes (in RAM within the cache budget, files beyond, up to '
        'half the disk the cache may use): the cache\'s disk column includes them, and '
        'its RAM column fills the budget with them.')


# -- the worker (one process per run) ------------------------------------------------
#: ANN forwards timed between calibration's sites, spread from the first to the last
FLOOR_SAMPLES = 9


def _prepare_cfg(det: dict, bench: dict):
    from mmengine.config import Config

    from snn_det.apis.convert import wrap_backbone_cfg
    cfg = Config.fromfile(osp.join(ROOT, det['config']))
    root = osp.join(ROOT, bench['data']['root'], 'coco') + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[key].dataset
        split = 'train' if key == 'train_dataloader' else 'val'
        ds.data_root = root
        ds.ann_file = f'annotations/instances_{split}.json'
        ds.data_prefix = dict(img=f'{split}/')
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = root + 'annotations/instances_val.json'
    # every image exactly at the COCO test scale (1333x800, padded to 1344x800): the
    # generated images vary in size and aspect, real COCO images mostly reach 800x1333
    for key in ('val_dataloader', 'test_dataloader'):
        for t in cfg[key].dataset.pipeline:
            if t['type'] == 'Resize':
                t['keep_ratio'] = False
    inner = cfg.model.backbone.get('backbone', cfg.model.backbone)
    inner.init_cfg = None                      # random weights: nothing is downloaded
    wrap_backbone_cfg(cfg, 32, {}, bench.get('chunk_size'))
    return cfg


def _worker(spec_path: str, out_path: str) -> None:
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner

    import snn_det  # noqa: F401
    from snn_det.apis.calib_data import build_calib_batches, calib_dataloader_cfg
    from snn_det.calibration.cache import CalibrationCache
    from snn_det.calibration.frontier import CachedImages
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import ann_forward_time, convert_backbone
    register_all_modules()
    spec = json.load(open(spec_path))
    det, run, bench = spec['detector'], spec['run'], spec['bench']
    seed, T = bench.get('seed', 0), int(run['T'])
    chunk = run.get('chunk_size', bench.get('chunk_size'))     # a run may set its own
    device = torch.device(spec.get('device') or 'cpu')
    torch.manual_seed(seed)
    cfg = _prepare_cfg(det, bench)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    model.to(device)               # the images follow (the data preprocessor's device)
    bb = model.backbone
    out = dict(threads=torch.get_num_threads(), device=device.type)
    if device.type == 'cuda':
        out['device_name'] = torch.cuda.get_device_name(device)
        torch.cuda.reset_peak_memory_stats(device)

    def collect(into=None):
        t0 = time.perf_counter()
        batches = build_calib_batches(cfg, model, int(run['images']),
                                      bench['calib_batch_size'], seed, into=into)
        out.update(data_s=time.perf_counter() - t0, input_shape=list(batches[0].shape),
                   sites=len(bb.graph.sites), rss_before_gib=rss_gib())
        return batches

    if run['kind'] == 'convert':
        conv = ConversionConfig.from_dict(dict(bench['conversion'],
                                               channels_last=bool(run.get('channels_last'))))
        max_sites = spec.get('max_sites')
        # as tools/convert.py (convert_model) does: the images go into the cache too, within
        # its budget; the cache's private directory under work_dirs/ goes when it closes
        current_limit = run.get('current_limit', bench.get('current_limit', 'auto'))
        out['current_limit'] = current_limit
        with CalibrationCache(run.get('cache_budget', bench['cache_budget']),
                              osp.join(ROOT, 'work_dirs'), current_limit) as cache:
            batches = collect(CachedImages(cache))
            trace, in_run, in_run_cl, sampling = [], [], [], []

            def channels_last(x):
                return x.contiguous(memory_format=torch.channels_last)
            acts = bb.site_activations() or None
            n_cal = min(max_sites or len(bb.graph.sites), len(bb.graph.sites))
            sample_at = {round(i * (n_cal - 1) / max(1, FLOOR_SAMPLES - 1))
                         for i in range(FLOOR_SAMPLES)}

            def after_site(name):   # each site's own peak (the first's includes thresholds)
                trace.append(dict(site=name, peak_rss_gib=_peak_gib(), rss_gib=rss_gib(),
                                  cache_ram_gib=cache.ram_bytes / (1 << 30),
                                  cache_disk_gib=cache.disk_bytes / (1 << 30)))
                if len(trace) - 1 in sample_at:     # the floor's unit, now (not profiled)
                    prof.disable()
                    t0 = time.perf_counter()
                    in_run.append(ann_forward_time(bb.graph, batches[0], acts, repeats=1))
                    if conv.channels_last:
                        in_run_cl.append(ann_forward_time(bb.graph, channels_last(batches[0]),
                                                          acts, repeats=1))
                    sampling.append(time.perf_counter() - t0)
                    prof.enable()
                _reset_peak()

            # the floor's unit, in this process (not part of a user's conversion), before
            # and after the calibration: this VM's speed drifts (one 32-image run measured
            # 1.94 s per forward after calibration, the 8-image run before it 1.00 s), and
            # the faster of the two gives the larger, never the flattering, ratio.  The
            # same forward is also timed between sites, FLOOR_SAMPLES times spread over the
            # calibration (outside its timed steps and the profile): the speed of the
            # machine while it calibrated, whose median is the second floor reported
            ann_before = ann_forward_time(bb.graph, batches[0], acts)
            # calibrating channels last: the same ANN forward in that layout too (a second
            # floor: what the ANN itself would take in the layout calibration runs in)
            if conv.channels_last:
                cl_before = ann_forward_time(bb.graph, channels_last(batches[0]), acts)
            _reset_peak()
            prof = cProfile.Profile()      # where the time goes (own time of each call)
            prof.enable()
            try:
                tim = convert_backbone(bb, batches, [T], conv, chunk, True, cache, max_sites,
                                       after_site)
            finally:
                prof.disable()
            out['profile_s'] = _profile_parts(prof)
            ann_after = ann_forward_time(bb.graph, batches[0], acts)
            out['ann_forward_before_after_s'] = [ann_before, ann_after]
            if conv.channels_last:
                out['channels_last'] = True
                out['ann_forward_channels_last_before_after_s'] = [
                    cl_before, ann_forward_time(bb.graph, channels_last(batches[0]), acts)]
                out['ann_forward_channels_last_in_run_s'] = in_run_cl
            out['ann_forward_in_run_s'] = in_run
            tim['ann_forward_per_image'] = min(ann_before, ann_after)
            out['cache'] = cache.stats()
            n = sum(batches.stored(i).shape[0] for i in range(len(batches)))
        per_T = tim['per_T'][T]
        out.update(observe_s=tim['observe'], ann_forward_per_image_s=tim['ann_forward_per_image'],
                   thresholds_s=per_T['thresholds'], calib_forward_s=per_T.get('forward', 0.0),
                   calib_steps_s={k: per_T[k] for k in conv.calib},
                   # the conversion alone: without the forwards timed between sites
                   convert_total_s=tim['total'] - sum(sampling),
                   calibrated_sites=min(max_sites or out['sites'], out['sites']),
                   phase_peak_rss_gib=max([_peak_gib()] + [t['peak_rss_gib'] for t in trace]),
                   site_trace=trace)
        floor = n * T * out['ann_forward_per_image_s']
        frac = out['calibrated_sites'] / out['sites']
        lcp = out['calib_forward_s'] + sum(out['calib_steps_s'].values())
        out['floor_s'] = floor
        # a partial run is compared with the same fraction of the floor (by sites, an
        # approximation: the stride-4 stage costs more per site than deeper ones)
        out['thresholds_lcp_over_floor'] = (out['thresholds_s'] + lcp) / (floor * frac)
        if in_run:        # against the median forward timed while it calibrated
            out['floor_in_run_s'] = n * T * statistics.median(in_run)
            out['thresholds_lcp_over_floor_in_run'] = \
                (out['thresholds_s'] + lcp) / (out['floor_in_run_s'] * frac)
        if out.get('channels_last'):   # the floors of an ANN run channels last too
            out['floor_channels_last_s'] = n * T * min(
                out['ann_forward_channels_last_before_after_s'])
            out['thresholds_lcp_over_floor_channels_last'] = \
                (out['thresholds_s'] + lcp) / (out['floor_channels_last_s'] * frac)
            if in_run_cl:
                out['floor_channels_last_in_run_s'] = n * T * statistics.median(in_run_cl)
                out['thresholds_lcp_over_floor_channels_last_in_run'] = \
                    (out['thresholds_s'] + lcp) / (out['floor_channels_last_in_run_s'] * frac)
    elif run['kind'] == 'bound':
        _bound_run(bb, collect()[0], T, chunk, bench, out)
    else:
        batches = collect()
        conv = ConversionConfig.from_dict(dict(bench['conversion'], calib=[]))
        convert_backbone(bb, batches[:1], [T], conv, chunk, False)
        loader = Runner.build_dataloader(calib_dataloader_cfg(cfg, 1, seed), seed=seed)
        data = next(iter(loader))
        bb.set_mode('ann')
        with torch.no_grad():
            t0 = time.perf_counter()
            model.test_step(data)
            out['ann_detector_s'] = time.perf_counter() - t0
            bb.set_mode('snn', T)
            bb.chunk_size = chunk
            _reset_peak()
            t0 = time.perf_counter()
            model.test_step(data)
            out['simulate_s'] = time.perf_counter() - t0
        out['phase_peak_rss_gib'] = _peak_gib()
        out['simulate_over_T_ann'] = out['simulate_s'] / (T * out['ann_detector_s'])
    if device.type == 'cuda':
        out['gpu_peak_gib'] = torch.cuda.max_memory_allocated(device) / 2**30
        out['gpu_reserved_peak_gib'] = torch.cuda.max_memory_reserved(device) / 2**30
    with open(out_path, 'w') as f:
        json.dump(out, f)


#: parts of a conversion's time, by the functions whose own time (cProfile) they sum
PROFILE_PARTS = {
    'convolutions': ('torch.conv2d',),                      # the SNN's and the ANN's
    'spike decode': ('spike_decode', 'unpackbits', '_unpack_torch'),
    'spike encode': ('spike_encode', 'packbits', '_pack_torch'),
    'neurons': ('if_steps', 'signed_steps'),
    'MMSE thresholds': ('mmse_errors',),
    'residual adds': ("method 'add_'",),
    'sums over time': ("method 'sum'",),
}


def _profile_parts(prof) -> dict:
    """Seconds of each :data:`PROFILE_PARTS` part and of everything else (``other``),
    from a cProfile of the conversion: calls into torch's C++ (convolutions, the fused
    kernels) are timed as the built-in calls they are."""
    import pstats
    stats = pstats.Stats(prof).stats
    total = sum(tt for (_, _, tt, _, _) in stats.values())     # own times: each once
    parts = {k: 0.0 for k in PROFILE_PARTS}
    for (_, _, func), (_, _, tt, _, _) in stats.items():
        for part, keys in PROFILE_PARTS.items():
            if any(k in func for k in keys):
                parts[part] += tt
                break
    parts['other'] = total - sum(parts.values())
    parts['total'] = total
    return parts


def _bound_run(bb, x, T: int, chunk, bench: dict, out: dict, repeats: int = 2) -> None:
    """The lower bound of LCP's time on one image ``x``: a plain simulation of the
    converted backbone and of its neurons-free copy
    (:func:`~snn_det.analysis.neurons_free.free_neuron_net`: convolutions, additions,
    pooling, no neuron), each the fastest of ``repeats``, against T x one ANN backbone
    forward, the floor's unit (the slower of two medians of three, one before and one
    after the simulations, as this VM drifts).  LCP runs every segment twice (its error
    at the old bias, then the frontier with the corrected one), and all segments make one
    simulation, so its two passes cannot take less than 2 x the neurons-free ratio of
    the floor; every choice here (fastest simulation, slowest ANN forward, no frontier
    coding, the simulation's buffer reuse) makes that bound lower, not higher."""
    import torch

    from snn_det.analysis.neurons_free import free_neuron_net
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import ann_forward_time, convert_backbone
    conv = ConversionConfig.from_dict(dict(bench['conversion'], calib=[]))
    convert_backbone(bb, [x], [T], conv, chunk, False)
    net = bb.spiking_net(T)
    free = free_neuron_net(net)
    ann = [ann_forward_time(bb.graph, x, bb.site_activations() or None)]
    times = {'snn': [], 'free': []}
    _reset_peak()
    with torch.no_grad():
        for _ in range(repeats):
            for name, n in (('snn', net), ('free', free)):
                t0 = time.perf_counter()
                n.simulate(x, T, chunk)
                times[name].append(time.perf_counter() - t0)
    out['phase_peak_rss_gib'] = _peak_gib()
    ann.append(ann_forward_time(bb.graph, x, bb.site_activations() or None))
    a = max(ann) * x.shape[0]
    out.update(ann_forward_s=ann, simulate_s=times['snn'], neurons_free_s=times['free'],
               snn_over_T_ann=min(times['snn']) / (T * a),
               neurons_free_over_T_ann=min(times['free']) / (T * a))
    out['lcp_two_passes_bound'] = 2 * out['neurons_free_over_T_ann']


# -- the driver ----------------------------------------------------------------------
def _make_data(bench: dict) -> None:
    from snn_det.datasets.synthetic import generate_detection_dataset
    root = osp.join(ROOT, bench['data']['root'])
    if osp.isfile(osp.join(root, 'coco', 'annotations', 'instances_val.json')):
        return
    n = int(bench['data']['num_images'])
    generate_detection_dataset(root, bench.get('seed', 0), num_train=n, num_val=2,
                               progress=False)


def _row_key(r: dict) -> tuple:
    """What makes a run a different measurement: a rerun of the same key replaces its row
    (threads included: one and two threads are both kept)."""
    return (r['detector'], r['kind'], r['images'], r['T'], r.get('max_sites'),
            r.get('cache_budget'), bool(r.get('heap_reuse')), r.get('device', 'cpu'),
            r.get('chunk_size'), r.get('threads'), bool(r.get('channels_last')))


def _on_cpu(r: dict) -> bool:
    return r.get('device', 'cpu') == 'cpu'


def _fmt(v, nd=2):
    return '-' if v is None else (f'{v:.{nd}f}' if isinstance(v, float) else str(v))


def _cache_cells(r: dict, res: dict) -> str:
    """``budget | RAM / disk`` of a convert row's calibration cache (GiB)."""
    c = r.get('cache', {})
    return (f"{r.get('cache_budget') or res['cache_budget']} | "
            f"{_fmt(c.get('peak_ram_bytes', 0) / 2**30)} / "
            f"{_fmt(c.get('peak_disk_bytes', 0) / 2**30)}")


def _time_cells(r: dict) -> str:
    """``observe | thresholds | calibration | floor | ratio | in-run floor | its ratio`` of a
    convert row (the floor of a prefix run is its share of the sites; ``-`` where a run
    did not time forwards between sites)."""
    calib = r['calib_forward_s'] + sum(r['calib_steps_s'].values())
    frac = r['calibrated_sites'] / r['sites']
    in_run = r.get('floor_in_run_s')
    return (f"{_fmt(r['observe_s'], 0)} | {_fmt(r['thresholds_s'], 0)} | {_fmt(calib, 0)} | "
            f"{_fmt(r['floor_s'] * frac, 0)} | {_fmt(r['thresholds_lcp_over_floor'])} | "
            f"{_fmt(in_run * frac if in_run else None, 0)} | "
            f"{_fmt(r.get('thresholds_lcp_over_floor_in_run'))}")


def _markdown(res: dict) -> str:
    lines = [f"# {res['name']}: memory and time at real scale (not accuracy)", '',
             res['note'] + ' "code" is the version of snn_det a run measured (its git tree; '
             '"-": before runs recorded it).', '',
             '## Calibration (thresholds + ' + res['calib'] + ')', '',
             '| detector | images | T | chunk | threads | heap reuse | sites calibrated | '
             'peak RSS (GiB) | calibration peak (GiB) | at site | cache budget | '
             'cache RAM / disk (GiB) | data (s) | observe (s) | thresholds (s) | '
             'calibration (s) | floor (s) | (thresholds + calibration) / floor | '
             'floor in run (s) | / floor in run | code (run) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
             '---|']
    for r in res['rows']:
        if r['kind'] != 'convert' or 'error' in r or not _on_cpu(r) or r.get('channels_last'):
            continue
        tr = r.get('site_trace') or []
        at = max(range(len(tr)), key=lambda i: tr[i]['peak_rss_gib']) if tr else None
        at = '-' if at is None else f"{at + 1} ({tr[at]['site']})"
        lines.append(
            f"| {r['detector']} | {r['images']} | {r['T']} | "
            f"{r.get('chunk_size') or res['chunk_size']} | {r.get('threads', '-')} | "
            f"{'on' if r.get('heap_reuse') else 'off'} | {r['calibrated_sites']}/"
            f"{r['sites']} | {_fmt(r['peak_rss_gib'])} | {_fmt(r['phase_peak_rss_gib'])} | "
            f"{at} | {_cache_cells(r, res)} | {_fmt(r['data_s'], 0)} | {_time_cells(r)} | "
            f"{r.get('code', '-')} ({r.get('date', '-')}) |")
    cl = [r for r in res['rows'] if r['kind'] == 'convert' and 'error' not in r
          and _on_cpu(r) and r.get('channels_last')]
    if cl:
        lines += ['', '## Calibration in channels-last layout (`--calib-channels-last`)', '',
                  'The same conversion with the images, every convolution input and every '
                  'cached boundary in channels-last memory layout (not bit-identical to the '
                  'default layout: a spike may move at a tie).  Two floors: the ANN backbone '
                  'as MMDetection runs it (default layout, as in the table above), and the '
                  'same ANN forward in channels-last layout, timed in the same process.', '',
                  '| detector | images | T | chunk | threads | sites calibrated | '
                  'peak RSS (GiB) | cache budget | cache RAM / disk (GiB) | thresholds (s) | '
                  'calibration (s) | floor (s) | / floor | floor in run (s) | / floor in run | '
                  'channels-last floor (s) | / it | in run (s) | / it in run | code (run) |',
                  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
                  '---|']
        for r in cl:
            frac = r['calibrated_sites'] / r['sites']
            calib = r['calib_forward_s'] + sum(r['calib_steps_s'].values())
            fl, fr = r.get('floor_in_run_s'), r.get('floor_channels_last_in_run_s')
            lines.append(
                f"| {r['detector']} | {r['images']} | {r['T']} | "
                f"{r.get('chunk_size') or res['chunk_size']} | {r.get('threads', '-')} | "
                f"{r['calibrated_sites']}/{r['sites']} | {_fmt(r['peak_rss_gib'])} | "
                f"{_cache_cells(r, res)} | {_fmt(r['thresholds_s'], 0)} | {_fmt(calib, 0)} | "
                f"{_fmt(r['floor_s'] * frac, 0)} | {_fmt(r['thresholds_lcp_over_floor'])} | "
                f"{_fmt(fl * frac if fl else None, 0)} | "
                f"{_fmt(r.get('thresholds_lcp_over_floor_in_run'))} | "
                f"{_fmt(r['floor_channels_last_s'] * frac, 0)} | "
                f"{_fmt(r['thresholds_lcp_over_floor_channels_last'])} | "
                f"{_fmt(fr * frac if fr else None, 0)} | "
                f"{_fmt(r.get('thresholds_lcp_over_floor_channels_last_in_run'))} | "
                f"{r.get('code', '-')} ({r.get('date', '-')}) |")
    lines += ['', '## Simulation of one image through the detector (mmdet test_step)', '',
              '| detector | T | chunk | peak RSS (GiB) | simulation peak (GiB) | simulation (s) '
              '| ANN detector (s) | simulation / (T x ANN) |', '|---|---|---|---|---|---|---|---|']
    for r in res['rows']:
        if r['kind'] != 'simulate' or 'error' in r or not _on_cpu(r):
            continue
        lines.append(f"| {r['detector']} | {r['T']} | {res['chunk_size']} | "
                     f"{_fmt(r['peak_rss_gib'])} | {_fmt(r['phase_peak_rss_gib'])} | "
                     f"{_fmt(r['simulate_s'], 0)} | {_fmt(r['ann_detector_s'])} | "
                     f"{_fmt(r['simulate_over_T_ann'])} |")
    gpu = [r for r in res['rows'] if r['kind'] == 'convert' and 'error' not in r
           and not _on_cpu(r)]
    if gpu:
        lines += ['', '## Calibration on one GPU (`--device cuda`)', '',
                  'The same conversion with the model, the images and every pass on the GPU; '
                  'the calibration cache (spike codes, the ANN boundary) stays in host RAM and '
                  'files, as on the CPU.  GPU peak is `torch.cuda.max_memory_allocated` '
                  '(reserved by the caching allocator in brackets); peak RSS is the host '
                  'process.', '',
                  '| detector | device | images | T | sites calibrated | GPU peak (GiB) | '
                  'peak RSS (GiB) | cache budget | cache RAM / disk (GiB) | observe (s) | '
                  'thresholds (s) | calibration (s) | floor (s) | '
                  '(thresholds + calibration) / floor | floor in run (s) | / floor in run |',
                  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
        for r in gpu:
            lines.append(
                f"| {r['detector']} | {r.get('device_name', r['device'])} | {r['images']} | "
                f"{r['T']} | {r['calibrated_sites']}/{r['sites']} | "
                f"{_fmt(r.get('gpu_peak_gib'))} ({_fmt(r.get('gpu_reserved_peak_gib'))}) | "
                f"{_fmt(r['peak_rss_gib'])} | {_cache_cells(r, res)} | {_time_cells(r)} |")
    prof = [r for r in res['rows'] if r.get('profile_s') and 'error' not in r and _on_cpu(r)]
    if prof:
        keys = list(PROFILE_PARTS) + ['other', 'total']
        lines += ['', "## Where a conversion's time goes (cProfile, own time of each call)", '',
                  'Seconds of the whole conversion (observe, thresholds, calibration) by '
                  'part; convolutions count the ANN\'s (observation, calibration targets) '
                  'as well as the SNN\'s.', '',
                  '| detector | images | T | chunk | threads | cache budget | '
                  + ' | '.join(keys) + ' |', '|---|---|---|---|---|---|' + '---|' * len(keys)]
        for r in prof:
            p = r['profile_s']
            lines.append(f"| {r['detector']} | {r['images']} | {r['T']} | "
                         f"{r.get('chunk_size') or res['chunk_size']} | "
                         f"{r.get('threads', '-')} | "
                         f"{r.get('cache_budget') or res['cache_budget']}"
                         f"{' (heap reuse)' if r.get('heap_reuse') else ''}"
                         f"{' (channels last)' if r.get('channels_last') else ''} | "
                         + ' | '.join(_fmt(p.get(k), 0) for k in keys) + ' |')
    bounds = [r for r in res['rows'] if r['kind'] == 'bound' and 'error' not in r]
    if bounds:
        lines += ['', "## Lower bound of LCP's two passes (one image, plain simulations)", '',
                  "LCP (seed 001 Algo. 2) runs every segment twice: its error at the old bias, "
                  "then the frontier with the corrected bias.  Its two passes cannot take less "
                  "than twice a simulation with neurons that cost nothing (convolutions, "
                  "additions, pooling only); thresholds come on top.  Fastest of the "
                  "simulations against the slower of two ANN medians.", '',
                  '| detector | T | threads | ANN backbone (s) | simulation (s) | '
                  'neurons free (s) | simulation / (T x ANN) | neurons free / (T x ANN) | '
                  'two passes >= (x floor) |', '|---|---|---|---|---|---|---|---|---|']
        for r in bounds:
            lines.append(f"| {r['detector']} | {r['T']} | {r.get('threads', '-')} | "
                         f"{_fmt(max(r['ann_forward_s']))} | {_fmt(min(r['simulate_s']), 1)} | "
                         f"{_fmt(min(r['neurons_free_s']), 1)} | {_fmt(r['snn_over_T_ann'])} | "
                         f"{_fmt(r['neurons_free_over_T_ann'])} | "
                         f"{_fmt(r['lcp_two_passes_bound'])} |")
    notes = [r for r in res['rows'] if (r.get('note') or r.get('profile_note'))
             and 'error' not in r]
    if notes:
        lines += ['', '## Notes on single runs', '']
        lines += [f"- {r['detector']} {r['kind']} {r['images']} images, T={r['T']}"
                  f"{', cache budget ' + r['cache_budget'] if r.get('cache_budget') else ''}"
                  f"{', heap reuse' if r.get('heap_reuse') else ''}"
                  f"{', channels last' if r.get('channels_last') else ''}"
                  f" ({r.get('date', '?')}): "
                  + '; '.join(x for x in (r.get('note'), r.get('profile_note')) if x)
                  for r in notes]
    errors = [r for r in res['rows'] if 'error' in r]
    if errors:
        lines += ['', '## Runs that failed', '']
        lines += [f"- {r['detector']} {r['kind']} images={r['images']} T={r['T']}: "
                  f"{r['error']}" for r in errors]
    lines += ['', f"Machine: {res['machine']}.  Generated by tools/scale_benchmark.py from "
              f"{res['config']}.", '']
    return '\n'.join(lines)


def _plot_site_memory(res: dict, path: str) -> None:
    """Peak RSS and calibration-cache RAM site by site, one line per convert run that
    traced them (full-depth runs first)."""
    rows = [r for r in res['rows'] if r.get('site_trace') and _on_cpu(r)]
    if not rows:
        return
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for r in rows:
        tr = r['site_trace']
        label = (f"{r['detector']}, {r['images']} images, T={r['T']}, "
                 f"budget {r.get('cache_budget') or res.get('cache_budget')}"
                 + (', channels last' if r.get('channels_last') else ''))
        line, = ax.plot(range(1, len(tr) + 1), [t['peak_rss_gib'] for t in tr], marker='.',
                        label=label + ': peak RSS')
        ax.plot(range(1, len(tr) + 1), [t['cache_ram_gib'] for t in tr], ls='--',
                color=line.get_color(), label=label + ': cache RAM')
    ax.set_xlabel('site (calibration order; peak during that site)')
    ax.set_ylabel('GiB')
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{res['name']}: memory site by site during calibration", fontsize=10)
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', nargs='?', help='configs/benchmarks/scale_*.py')
    p.add_argument('--detectors', nargs='+', help='only these detector names')
    p.add_argument('--runs', nargs='+', type=int, help='only these run indices of the config')
    p.add_argument('--max-sites', type=int, default=None,
                   help='calibrate only the first N spiking sites of convert runs')
    p.add_argument('--device', default='cpu',
                   help="where the model and calibration run: 'cpu' (default) or 'cuda'")
    p.add_argument('--out-root', default=osp.join(ROOT, 'docs', 'results'))
    p.add_argument('--render', action='store_true',
                   help='only rewrite results.md and the plot from the results.json (and '
                        "its same_code from the config)")
    p.add_argument('--worker', nargs=2, metavar=('SPEC', 'OUT'), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(*args.worker)
    if not args.config or not osp.isfile(args.config):
        sys.exit(f"error: benchmark config '{args.config}' does not exist")
    if args.device not in ('cpu', 'cuda'):
        sys.exit(f"error: --device must be 'cpu' or 'cuda', got '{args.device}'")
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            sys.exit('error: --device cuda: torch sees no CUDA device on this machine')
    from mmengine.config import Config

    from snn_det.utils.checkpoint import write_text_atomic
    from snn_det.utils.provenance import code_version, provenance, repo_relative
    bench = Config.fromfile(args.config).scale_benchmark.to_dict()
    if not args.render:
        _make_data(bench)
    out_dir = osp.join(args.out_root, bench['name'])
    os.makedirs(out_dir, exist_ok=True)
    res_path = osp.join(out_dir, 'results.json')
    res = json.load(open(res_path)) if osp.isfile(res_path) else dict(rows=[])
    res['same_code'] = bench.get('same_code', {})
    if args.render:
        res['note'] = NOTE
        write_text_atomic(json.dumps(res, indent=1) + '\n', res_path)
        write_text_atomic(_markdown(res), osp.join(out_dir, 'results.md'))
        _plot_site_memory(res, osp.join(out_dir, 'site_memory.png'))
        print(f"wrote {osp.join(out_dir, 'results.md')}")
        return
    res.update(name=bench['name'], config=repo_relative(args.config), provenance=provenance(),
               title="seed 001's COCO scale (ResNet-50 detectors, 800x1333, T up to 256): memory and time of calibration and simulation, not accuracy",
               calib=str(bench['conversion'].get('calib')), chunk_size=bench.get('chunk_size'),
               cache_budget=bench['cache_budget'],
               machine=f'{os.cpu_count()} CPU cores, {platform.machine()}, '
                       f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30:.0f}'
                       ' GiB RAM',
               note=NOTE)
    for det in bench['detectors']:
        if args.detectors and det['name'] not in args.detectors:
            continue
        for i, run in enumerate(bench['runs']):
            if args.runs is not None and i not in args.runs:
                continue
            max_sites = args.max_sites if run['kind'] == 'convert' else None
            print(f"[scale] {det['name']}: {run['kind']} images={run['images']} T={run['T']}"
                  + (f' (first {max_sites} sites)' if max_sites else ''), flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                spec_path, out_path = osp.join(tmp, 'spec.json'), osp.join(tmp, 'out.json')
                json.dump(dict(detector=det, run=run, bench=bench, max_sites=max_sites,
                               device=args.device), open(spec_path, 'w'))
                code = code_version()         # of the code the worker loads, now
                t0 = time.perf_counter()
                # heap reuse in calibration's passes is opt-in (snn_det/utils/heap.py)
                env = dict(os.environ,
                           SNN_DET_CALIB_HEAP_REUSE='1' if run.get('heap_reuse') else '0')
                proc = subprocess.Popen([sys.executable, osp.abspath(__file__), '--worker',
                                         spec_path, out_path], env=env)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                row = dict(detector=det['name'], kind=run['kind'], images=run['images'],
                           T=run['T'], max_sites=max_sites, wall_s=time.perf_counter() - t0,
                           cache_budget=run.get('cache_budget'),
                           heap_reuse=bool(run.get('heap_reuse')), device=args.device,
                           chunk_size=run.get('chunk_size'),
                           channels_last=bool(run.get('channels_last')),
                           peak_rss_gib=usage.ru_maxrss / (1 << 20),
                           date=time.strftime('%Y-%m-%d'), code=code,
                           finished=time.strftime('%Y-%m-%dT%H:%M:%S'))
                if proc.returncode == 0 and osp.isfile(out_path):
                    row.update(json.load(open(out_path)))
                    # the worker restarts the kernel's peak at every site: the process's
                    # peak is the largest of the phases it saw
                    row['peak_rss_gib'] = max(row['peak_rss_gib'],
                                              row.get('phase_peak_rss_gib', 0.0))
                else:
                    row['error'] = f'exit code {proc.returncode}'
            res['rows'] = [r for r in res['rows'] if _row_key(r) != _row_key(row)] + [row]
            res['rows'].sort(key=lambda r: (r['detector'], r['kind'], r['T'], r['images'],
                                            str(r.get('cache_budget'))))
            write_text_atomic(json.dumps(res, indent=1) + '\n', res_path)
            write_text_atomic(_markdown(res), osp.join(out_dir, 'results.md'))
            _plot_site_memory(res, osp.join(out_dir, 'site_memory.png'))
            print(f"[scale]   peak RSS {row['peak_rss_gib']:.2f} GiB, {row['wall_s']:.0f} s",
                  flush=True)
    print(f'wrote {res_path}')


if __name__ == '__main__':
    main()
