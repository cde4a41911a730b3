"""The worker of the scale benchmark: one fresh process per run (:mod:`.scale`).

It builds the detector with random (seeded) weights, collects the calibration
images through the config's own pipeline and converts the backbone (``convert``),
simulates one image through the whole detector (``simulate``), or times the lower
bound of LCP's passes on one image (``bound``), and writes what it measured (time
by part, peak memory of each phase, the compute floor) as JSON.

    python -m snn_det.benchmarks.scale_worker SPEC.json OUT.json
"""
import cProfile
import json
import os
import os.path as osp
import statistics
import sys
import time

from ..utils.resources import peak_rss_gib as _peak_gib
from ..utils.resources import reset_peak_rss as _reset_peak
from ..utils.resources import rss_gib

#: the repository (configs/, data/, work_dirs/, docs/results/)
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))



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

    from snn_det.apis.calib_data import build_calib_batches, calib_dataloader_cfg
    from snn_det.runtime.cache import CalibrationCache
    from snn_det.runtime.memory import default_memory_budget, format_bytes
    from snn_det.runtime.states import CachedImages
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
                                      run.get('calib_batch_size', bench['calib_batch_size']),
                                      seed, into=into)
        out.update(data_s=time.perf_counter() - t0, input_shape=list(batches[0].shape),
                   sites=len(bb.graph.sites), rss_before_gib=rss_gib())
        return batches

    if run['kind'] == 'convert':
        conv = ConversionConfig.from_dict(dict(bench['conversion'],
                                               channels_last=bool(run.get('channels_last'))))
        max_sites = spec.get('max_sites') or run.get('max_sites')
        # as tools/convert.py (convert_model) does: the images go into the cache too, within
        # its budget; the cache's private directory under work_dirs/ goes when it closes
        current_limit = run.get('current_limit', bench.get('current_limit', 'auto'))
        out['current_limit'] = current_limit
        # default options (run['defaults']): as tools/convert.py with no --chunk-size, no
        # --calib-cache-budget and --memory-budget auto: the library chooses both
        defaults = bool(run.get('defaults'))
        memory_budget = default_memory_budget() if defaults else None
        if defaults:
            chunk = None
        cache_budget = (memory_budget // 8 if defaults
                        else run.get('cache_budget', bench['cache_budget']))
        out['memory_budget'] = memory_budget
        with CalibrationCache(cache_budget, osp.join(ROOT, 'work_dirs'), current_limit) as cache:
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
            cpu0 = os.times()
            try:
                tim = convert_backbone(bb, batches, [T], conv, chunk, True, cache, max_sites,
                                       after_site, memory_budget=memory_budget,
                                       choose_cache_budget=defaults)
            finally:
                prof.disable()
            cpu1 = os.times()     # CPU time in the kernel: page faults of fresh tensors
            out.update(cpu_user_s=cpu1.user - cpu0.user, cpu_system_s=cpu1.system - cpu0.system)
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
        if 'memory_plan' in per_T:
            out['memory_plan'] = per_T['memory_plan']
            out.update(defaults=True, chunk_size=per_T['memory_plan']['chunk_size'],
                       cache_budget=format_bytes(per_T['memory_plan']['cache_budget']))
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




if __name__ == '__main__':
    _worker(sys.argv[1], sys.argv[2])
