"""Simulation speed of the spiking backbones, against the ANN and against SpikingJelly.

Run by ``python tools/speed_benchmark.py configs/benchmarks/simulation_speed.py``
(:func:`run_speed_benchmark`; tables in :mod:`.speed_report`).

For every detector of the config and every thread count: the ANN backbone's forward
time on one batch of generated val images; the SNN's simulation time at each T
(fused C++ neuron steps), its ratio to T x (ANN backbone forward) and the peak RSS
of the simulation; the Python step loop at one T; and the same converted network
(layer-wise thresholds) with SpikingJelly 2.0's multi-step ``IFNode`` (soft reset,
``v_reset=None``) in place of each IF neuron, its readouts checked bit-identical to
ours, and the throughput ratio.  Signed neurons (Darknet's Leaky-ReLU sites) have
no SpikingJelly counterpart: those rows say so.  Times are medians of ``repeats``
runs after one warm-up; each ratio (SNN / T x ANN, SpikingJelly / ours) is the median
of paired runs, the reference timed right before each run it is compared with, since
this VM's speed drifts by tens of percent over minutes.  Results: ``<out-root>/<name>/results.{json,md}``.
"""
import copy
import json
import os
import os.path as osp
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version

import torch
from torch import nn

from ..analysis.neurons_free import free_neuron_net
from ..analysis.results import FULL_SCOPE_ROWS
# SpikingJelly's IFNode in our converted nets (snn_det.peers: the library's adapters)
from ..peers.spikingjelly import spikingjelly_net
from ..utils.checkpoint import write_text_atomic
from ..utils.provenance import ROOT, provenance, repo_relative
from ..utils.resources import peak_rss_gib, reset_peak_rss, rss_gib
from .speed_report import markdown

__all__ = ['measure', 'measure_full_scope', 'run_speed_benchmark']


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return 'not installed'


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _median_time(fn, repeats: int) -> float:
    fn()                                  # warm-up (allocations, oneDNN kernels)
    return statistics.median(_once(fn) for _ in range(repeats))


def _paired_times(ref, fn, repeats: int, ref_runs: int = 5):
    """Time ``ref`` (the median of ``ref_runs`` runs) right before each of ``repeats`` runs
    of ``fn``, so that both see the machine in the same state (this VM's speed drifts by
    tens of percent over minutes).  Returns the medians of ``ref`` and of ``fn`` and the
    median of the per-pair ratios ``fn / ref``."""
    ref(), fn()                           # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(statistics.median(_once(ref) for _ in range(ref_runs)))
        tb.append(_once(fn))
    return (statistics.median(ta), statistics.median(tb),
            statistics.median(b / a for a, b in zip(ta, tb)))


def _batch(cfg, model, n: int, seed: int, split: str = 'test') -> torch.Tensor:
    """``n`` images of the config's test (or train) set, preprocessed as in testing."""
    from mmengine.runner import Runner

    from snn_det.apis.calib_data import calib_dataloader_cfg, collect_calib_batches
    if split == 'test':
        loader_cfg = copy.deepcopy(cfg.test_dataloader)
        loader_cfg.update(batch_size=n, num_workers=0, persistent_workers=False)
    else:
        loader_cfg = calib_dataloader_cfg(cfg, n, seed)
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    return collect_calib_batches(model, loader, n)[0]


def _build(det: dict, scope: str = 'backbone'):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    from snn_det.apis import wrap_backbone_cfg
    cfg = Config.fromfile(osp.join(ROOT, det['config']))
    wrap_backbone_cfg(cfg, 32, {}, scope=scope)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, osp.join(ROOT, det['checkpoint']), map_location='cpu',
                    logger='silent')
    return cfg, model.eval()


def measure(det: dict, bench: dict, threads: int) -> dict:
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import convert_backbone
    from snn_det.neurons import fused_available
    torch.set_num_threads(threads)
    torch.manual_seed(bench.get('seed', 0))
    cfg, model = _build(det)
    bb = model.backbone
    x = _batch(cfg, model, bench['batch_size'], bench.get('seed', 0))
    calib = [_batch(cfg, model, bench['calib_images'], bench.get('seed', 0), 'train')]
    reps, chunk = bench['repeats'], bench['chunk_size']
    T_list = sorted(bench['T'])
    out = dict(detector=det['name'], threads=threads, input=list(x.shape),
               fused=fused_available(), chunk_size=chunk)
    with torch.no_grad():
        bb.set_mode('ann')
        out['ann_s'] = _median_time(lambda: bb(x), max(10, reps))   # short: more runs
        convert_backbone(bb, calib, [max(T_list)],
                         ConversionConfig.from_dict(bench['conversion']), chunk, progress=False)
        net = bb.spiking_net(max(T_list))
        out['sites'] = len(net.neurons)
        out['signed_sites'] = sum(n.signed for n in net.neurons.values())
        out['snn'] = {}
        for T in T_list:
            base = rss_gib()
            reset_peak_rss()
            bb.set_mode('ann')
            ann, secs, ratio = _paired_times(lambda: bb(x),
                                             lambda: net.simulate(x, T, chunk), reps)
            out['snn'][T] = dict(seconds=secs, over_T_ann=ratio / T, ann_s=ann,
                                 peak_rss_gib=peak_rss_gib(),
                                 peak_over_start_gib=peak_rss_gib() - base)
        T_py = bench['python_loop_T']
        os.environ['SNN_DET_FUSED'] = '0'
        try:
            secs = _median_time(lambda: net.simulate(x, T_py, chunk), reps)
        finally:
            os.environ.pop('SNN_DET_FUSED')
        free = free_neuron_net(net)          # everything but the neurons, at T_py
        bb.set_mode('ann')
        _, free_s, free_ratio = _paired_times(lambda: bb(x),
                                              lambda: free.simulate(x, T_py, chunk), reps)
        out['neurons_free'] = dict(T=T_py, seconds=free_s, over_T_ann=free_ratio / T_py)
        out['python_loop'] = dict(T=T_py, seconds=secs, over_T_ann=secs / (T_py * out['ann_s']),
                                  fused_speedup=secs / out['snn'][T_py]['seconds'])
        out['spikingjelly'] = _spikingjelly(bb, calib, x, bench, chunk, reps)
        if bench.get('channels_last'):
            out['channels_last'] = _channels_last(bb, net, x, calib, bench, chunk, reps, out)
        full = bench.get('full_scope')
        if full and det['name'] in full['detectors']:
            out['full_scope'] = _full_scope(det, model, x, calib, bench, chunk, reps)
    return out


def measure_full_scope(det: dict, bench: dict, threads: int) -> dict:
    """Only the fully spiking detector's rows (``--full-scope-only``)."""
    torch.set_num_threads(threads)
    torch.manual_seed(bench.get('seed', 0))
    cfg, model = _build(det)
    x = _batch(cfg, model, bench['batch_size'], bench.get('seed', 0))
    calib = [_batch(cfg, model, bench['calib_images'], bench.get('seed', 0), 'train')]
    with torch.no_grad():
        return _full_scope(det, model, x, calib, bench, bench['chunk_size'], bench['repeats'])


def _full_scope(det, model, x, calib, bench, chunk, reps) -> dict:
    """The fully spiking detector (issue 13: backbone, neck and head up to the prediction
    convolutions) against mmdet's own ANN detector forward (``_forward``: backbone, neck,
    head, no box decoding / NMS) on the same batch."""
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import convert_backbone
    from mmdet.structures import DetDataSample
    h, w = x.shape[-2:]        # metas: a two-stage detector's RPN clips its proposals
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                           pad_shape=(h, w), scale_factor=(1.0, 1.0),
                                           batch_input_shape=(h, w))) for _ in range(len(x))]
    model.backbone.set_mode('ann')
    ann_s = _median_time(lambda: model._forward(x, samples), max(5, reps))
    T_list = sorted(bench['full_scope']['T'])
    res = dict(ann_detector_s=ann_s)
    for relu_neuron in bench['full_scope'].get('relu_neuron', ['if']):
        _, full = _build(det, 'full')
        if relu_neuron != 'if' and all(s.signed for s in full.backbone.graph.sites):
            continue                      # no ReLU site: the same net as 'if'
        conv = ConversionConfig.from_dict(dict(bench['conversion'], relu_neuron=relu_neuron))
        convert_backbone(full.backbone, calib, [max(T_list)], conv, chunk, progress=False)
        res['sites'] = len(full.backbone.graph.sites)
        rows = res.setdefault(FULL_SCOPE_ROWS[relu_neuron][0], {})
        for T in T_list:
            full.backbone.set_mode('snn', T)
            a, secs, ratio = _paired_times(lambda: model._forward(x, samples),  # the ANN
                                           lambda: full._forward(x, samples), reps)
            rows[T] = dict(seconds=secs, over_T_ann=ratio / T, ann_detector_s=a)
    return res


def _channels_last(bb, net, x, calib, bench, chunk, reps, out) -> dict:
    """The same nets simulated with the image in channels-last layout (``--channels-last``):
    the ANN backbone in that layout too, the SNN at each T (with its largest difference
    from the default layout's readout), and the SpikingJelly comparison in that layout."""
    xc = x.contiguous(memory_format=torch.channels_last)
    res = dict(ann_s=_median_time(lambda: bb.ann(xc), max(10, reps)), snn={})
    for T in sorted(bench['T']):
        bb.set_mode('ann')
        ann, secs, ratio = _paired_times(lambda: bb(x), lambda: net.simulate(xc, T, chunk),
                                         reps)
        a, b = net.simulate(x, T, chunk), net.simulate(xc, T, chunk)
        res['snn'][T] = dict(seconds=secs, over_T_ann=ratio / T,
                             over_T_ann_channels_last=secs / (T * res['ann_s']),
                             max_abs_diff=max(float((p - q).abs().max()) for p, q in zip(a, b)))
    res['spikingjelly'] = _spikingjelly(bb, calib, xc, bench, chunk, reps)
    return res


def _spikingjelly(bb, calib, x, bench, chunk, reps) -> dict:
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import convert_backbone
    sj_cfg = bench['spikingjelly']
    try:
        import spikingjelly  # noqa: F401
        from spikingjelly.activation_based import neuron  # noqa: F401
    except ImportError as e:
        return dict(error=f'SpikingJelly not installed ({e}); see docs/results/'
                          'simulation_speed/README or requirements/benchmarks.txt')
    T_list = sorted(sj_cfg['T'])
    layer_bb = copy.deepcopy(bb)
    layer_bb.snn = nn.ModuleDict()
    convert_backbone(layer_bb, calib, [max(T_list)],
                     ConversionConfig.from_dict(sj_cfg['conversion']), chunk, progress=False)
    ours = layer_bb.spiking_net(max(T_list))
    sj = spikingjelly_net(ours)
    if sj is None:
        return dict(error='not expressible: signed (Leaky-ReLU) sites have no SpikingJelly '
                          'IFNode counterpart')
    free = free_neuron_net(ours)     # the bound: our net with neurons that cost nothing
    res = dict(version=_version('spikingjelly'), rows={})
    for T in T_list:
        a, b = ours.simulate(x, T, chunk), sj.simulate(x, T, chunk)
        identical = all(torch.equal(p, q) for p, q in zip(a, b))
        t_ours, t_sj, ratio = _paired_times(lambda: ours.simulate(x, T, chunk),
                                            lambda: sj.simulate(x, T, chunk), reps, 1)
        t_free, _, bound = _paired_times(lambda: free.simulate(x, T, chunk),
                                         lambda: sj.simulate(x, T, chunk), reps, 1)
        res['rows'][T] = dict(identical=identical, ours_s=t_ours, spikingjelly_s=t_sj,
                              throughput_ratio=ratio, neurons_free_s=t_free,
                              neurons_free_ratio=bound)
    return res




def run_speed_benchmark(config_path: str, out_root: str, detectors=None, threads_only=None,
                        full_scope_only: bool = False) -> str:
    """Measure every (detector, thread count) of a ``simulation_speed`` config, merging
    the rows into ``<out_root>/<name>/results.{json,md}`` as each is done; the path of
    the JSON.  ``full_scope_only`` measures only the fully spiking detectors and keeps
    the other columns of their rows."""
    from mmengine.config import Config
    bench = Config.fromfile(config_path).simulation_speed.to_dict()
    out_dir = osp.join(out_root, bench['name'])
    os.makedirs(out_dir, exist_ok=True)
    res_path = osp.join(out_dir, 'results.json')
    res = json.load(open(res_path)) if osp.isfile(res_path) else dict(rows=[])
    res.update(name=bench['name'], config=repo_relative(config_path), provenance=provenance(),
               title='simulation speed of the spiking backbones against the ANN and against SpikingJelly',
               T=sorted(bench['T']), python_loop_T=bench['python_loop_T'],
               machine=f'{os.cpu_count()} CPU cores, {platform.machine()}, torch '
                       f'{torch.__version__}',
               note=f"Batch of {bench['batch_size']} generated val images (the configs' "
                    f"320x320 test pipeline), chunks of {bench['chunk_size']} steps, "
                    f"{bench['conversion']['threshold']} thresholds "
                    f"({'per channel' if bench['conversion'].get('channel_wise') else 'per layer'}"
                    f"); medians of {bench['repeats']} runs.  Each ratio is the median of "
                    f"{bench['repeats']} paired runs, the reference (the ANN; ours against "
                    'SpikingJelly) timed right before each run it is compared with, as this '
                    "VM's speed drifts over minutes.  Time only: these conversions are "
                    'not calibrated.')
    for det in bench['detectors']:
        if detectors and det['name'] not in detectors:
            continue
        for threads in bench['threads']:
            if threads_only and threads not in threads_only:
                continue
            if full_scope_only:
                if det['name'] not in bench.get('full_scope', {}).get('detectors', []):
                    continue
                row = next((r for r in res['rows']
                            if (r['detector'], r['threads']) == (det['name'], threads)), None)
                if row is None:
                    continue
                print(f"[speed] {det['name']}, {threads} thread(s), full scope", flush=True)
                row = dict(row, full_scope=json.loads(json.dumps(
                    measure_full_scope(det, bench, threads))))
                row['full_scope']['date'] = time.strftime('%Y-%m-%d')
            else:
                print(f"[speed] {det['name']}, {threads} thread(s)", flush=True)
                row = json.loads(json.dumps(measure(det, bench, threads)))   # str keys
            row.setdefault('date', time.strftime('%Y-%m-%d'))
            res['rows'] = [r for r in res['rows']
                           if (r['detector'], r['threads']) != (det['name'], threads)] + [row]
            order = [d['name'] for d in bench['detectors']]
            res['rows'].sort(key=lambda r: (order.index(r['detector'])
                                            if r['detector'] in order else 99, r['threads']))
            write_text_atomic(json.dumps(res, indent=1) + '\n', res_path)
            write_text_atomic(markdown(res), osp.join(out_dir, 'results.md'))
    return res_path

