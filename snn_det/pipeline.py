"""The conversion flow: observe, fold BN, insert neurons, choose thresholds, calibrate.

It sits above both packages it drives: :mod:`snn_det.conversion` (graphs, ops,
the spiking net, thresholds) and :mod:`snn_det.calibration` (which itself only
uses conversion's ops), so neither imports the other back.

``convert_backbone`` implements seed 001 Algo. 2 (and the Stage-II steps of
seed 003 Algorithm 1) for a :class:`~snn_det.models.SpikingBackbone`:

1. observe: run the ANN on the calibration images and record every site's
   input current (:class:`ActivationObserver`);
2. for each T: fold BN into the convolutions (Eq. 25) and put one IF neuron on
   every activation site (:class:`SpikingNet`);
3. choose each site's threshold (max / percentile / MMSE, Algo. 1) and apply
   the ClipRound shift (``v(0) = theta/2`` or ``b += theta/2T``);
4. calibrate, site by site from the first to the last: bias (LCP), initial
   potential and weights (ACP), coarse / fine calibration (seed 003), towards
   the ANN or, for a QC-ANN, its QC function at max(T, its own T) (:func:`targets_at`);
5. store the result in the wrapper under ``snn.T<T>``.
"""
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor

from .calibration import CalibrationContext
from .runtime.cache import CalibrationCache
from .calibration.frontier import Frontier
from .runtime.memory import (check_calibration_fits, check_disk, choose_chunk_size,
                             describe_plan, format_bytes, held_bytes, over_budget_error,
                             plan_calibration)
from .utils.memory import InsufficientMemoryError, available_bytes
from .conversion.config import ConversionConfig, observed_first
from .conversion.ops import AnnOps
from .conversion.spiking_net import SpikingNet
from .conversion.thresholds import ActivationObserver, choose_threshold
from .registry import CALIBRATION_STEPS
from .runtime.currents import keeps_products_of
from .utils.memory import release_free_memory


@torch.no_grad()
def observe(graph, batches: List[Tensor], acts=None, max_samples: int = 1 << 22,
            seed: int = 0) -> Dict[str, ActivationObserver]:
    """Run the ANN over the calibration batches; one observer per site."""
    observers = {s.name: ActivationObserver(s.channels, s.negative_slope, max_samples, seed + i)
                 for i, s in enumerate(graph.sites)}

    def rec(kind, name, x, steps):
        if kind == 'site_in':
            observers[name].update(x)

    for x in batches:
        graph.forward(x, AnnOps(graph, acts, recorder=rec))
    from mmengine.dist import all_reduce, get_world_size
    if get_world_size() > 1:          # thresholds from every rank's maximum
        for o in observers.values():
            all_reduce(o.max, op='max')
    return observers


@torch.no_grad()
def build_spiking_net(graph, observers: Dict[str, ActivationObserver], T: int,
                      cfg: ConversionConfig, acts=None) -> SpikingNet:
    """Fold BN, insert neurons, set thresholds and the ClipRound shift for one T."""
    net = SpikingNet(graph, T, cfg.channel_wise, cfg.rounding, relu_neuron=cfg.relu_neuron)
    for site in graph.sites:
        neuron = net.neuron(site.name)
        act = (acts or {}).get(site.name)
        if act is not None and hasattr(act, 'spiking_threshold'):
            theta = act.spiking_threshold(cfg.channel_wise)       # QC / QCFS: theta = lambda
        else:
            try:
                theta = choose_threshold(observers[site.name], cfg.threshold, T,
                                         cfg.channel_wise, cfg.percentile, cfg.grid,
                                         cfg.rounding)
            except (ValueError, RuntimeError) as e:
                raise type(e)(f"site '{site.name}': {e}") from None
        theta = theta.to(neuron.threshold).clone()
        from mmengine.dist import broadcast, get_world_size
        if get_world_size() > 1:      # percentile/MMSE samples differ per rank: use rank 0's
            broadcast(theta, 0)
        neuron.threshold = theta
        if neuron.signed or cfg.shift == 'none':     # a signed neuron rounds with h = 1/2
            neuron.v0 = torch.zeros_like(neuron.v0)
        elif cfg.shift == 'potential':
            neuron.v0 = theta / 2                                  # seed 002 Theorem 2
        else:                                                      # 'bias': b += theta/2T
            neuron.v0 = torch.zeros_like(neuron.v0)
            net.conv(site.owner).bias.add_((theta / (2 * T)).reshape(-1).expand(site.channels))
    return net


@torch.no_grad()
def ann_forward_time(graph, x: Tensor, acts=None, repeats: int = 3) -> float:
    """Seconds of one plain ANN backbone forward per image (on ``x``): the unit of the
    compute floor of calibration, images x T x this.  The median of ``repeats`` timed
    forwards after one warm-up (the first forward at a new input size also creates the
    oneDNN kernels and faults its buffers in, which would inflate the floor).  On a GPU
    each forward is timed to its end (``torch.cuda.synchronize``), not to its launch."""
    def sync():
        if x.is_cuda:
            torch.cuda.synchronize(x.device)

    times = []
    graph.forward(x, AnnOps(graph, acts))
    for _ in range(max(1, repeats)):
        sync()
        t0 = time.perf_counter()
        graph.forward(x, AnnOps(graph, acts))
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / x.shape[0]


def targets_at(acts: Optional[Dict], T: int) -> Optional[Dict]:
    """The calibration targets of an SNN with T steps.

    A Stage-I QC activation fine-tuned for T' keeps its trained threshold and is
    quantized at max(T, T') (``QCActivation.at_time_steps``); QCFS and plain
    activations are their own targets.
    """
    if not acts:
        return acts
    return {k: a.at_time_steps(T) if hasattr(a, 'at_time_steps') else a
            for k, a in acts.items()}


def calibrate(graph, net: SpikingNet, batches: List[Tensor], cfg: ConversionConfig,
              chunk_size: Optional[int] = None, acts=None, progress: bool = True,
              cache: Optional[CalibrationCache] = None, max_sites: Optional[int] = None,
              after_site: Optional[Callable[[str], None]] = None) -> dict:
    """Apply ``cfg.calib`` site by site (seed 001 Algo. 2 / seed 003 Algorithm 1).

    What calibration keeps per batch (frontiers, weight / fine calibration caches)
    lives in ``cache`` (default: an unbounded in-RAM one).  ``max_sites`` stops after
    the first sites (to profile a prefix of a large network); ``after_site(name)`` is
    called once each site is done (e.g. to trace memory site by site)."""
    T = net.num_steps
    report = {step: 0.0 for step in cfg.calib}
    if not cfg.calib:
        return report
    cache = cache if cache is not None else CalibrationCache()
    sites = graph.sites if max_sites is None else graph.sites[:max_sites]
    bar = ProgressBar(len(sites)) if progress else None
    fmt = torch.channels_last if cfg.channels_last else None
    if hasattr(batches, 'stored'):       # CachedImages: the frontiers share its handles
        frontiers = [Frontier(batches.stored(i), cache, batches.items[i][1], fmt)
                     for i in range(len(batches))]
    else:                                # each segment runs once per step
        frontiers = [Frontier(x, cache, memory_format=fmt) for x in batches]
    for site in sites:
        _calibrate_site(graph, net, frontiers, site.name, cfg, T, chunk_size, acts,
                        cache, report)
        release_free_memory()     # this site's small buffers: not carried on
        if after_site is not None:
            after_site(site.name)
        if bar is not None:
            bar.update()
    if bar is not None:
        print('', flush=True)
    return report


def _calibrate_site(graph, net, frontiers, site: str, cfg, T, chunk_size, acts, cache,
                    report: dict) -> None:
    """Every step of ``cfg.calib`` at one site, after moving the frontiers to its segment."""
    seg = graph.segment_of(site)
    # LCP / ACP / CC start from the site's outputs: the frontiers observe them on their way
    # to its segment (one pass over each time chunk, not two: Frontier.advance)
    observe = site if observed_first(cfg.calib[0]) else None
    t0 = time.perf_counter()
    for f in frontiers:
        f.advance(graph, net, seg, T, chunk_size, acts, observe)
    report['forward'] = report.get('forward', 0.0) + time.perf_counter() - t0
    ctx = CalibrationContext(graph, net, frontiers, site, T, chunk_size, acts, cache, cfg)
    for step in cfg.calib:       # registered steps (snn_det.registry.CALIBRATION_STEPS)
        t0 = time.perf_counter()
        CALIBRATION_STEPS.get(step)(ctx)
        report[step] += time.perf_counter() - t0


def product_sites(graph, net) -> List[str]:
    """Sites whose owning convolution's products calibration may keep between its two
    passes (:mod:`~snn_det.runtime.currents`)."""
    out = []
    for site in graph.sites:
        owner = site.owner
        if owner is not None and net.key(owner) in net.convs \
                and keeps_products_of(net.conv(owner)):
            out.append(site.name)
    return out


def _plan(T, largest, held, cfg, memory_budget, chunk_size, cache, choose_cache_budget,
          progress, batches, boundaries) -> dict:
    """The memory plan of calibration at ``T`` within ``memory_budget``, checked against
    the free memory and the free disk under the cache's folder (``boundaries``: what the
    cache holds without kept products, :func:`~snn_det.runtime.memory.check_disk`) and
    printed (:func:`~snn_det.runtime.memory.plan_calibration`)."""
    cache_now = cache.ram_bytes if cache is not None else 0
    fixed_cache = None
    if cache is not None and not choose_cache_budget:
        fixed_cache = cache.budget if cache.budget is not None else held + cache_now
    plan = plan_calibration(largest, held, T, cfg.calib, memory_budget, None, chunk_size,
                            fixed_cache, cache_now)
    if not plan['fits'] and not chunk_size:
        raise InsufficientMemoryError(over_budget_error(plan, T, int(batches[0].shape[0])))
    free = available_bytes()
    if free is not None and plan['parts']['total'] - plan['parts']['process'] > free:
        raise InsufficientMemoryError(
            f'calibration at T={T} needs about {format_bytes(plan["parts"]["total"])} but '
            f'{format_bytes(free)} is free beyond what this process holds: use a smaller '
            '--memory-budget, --chunk-size or --calib-cache-budget')
    if cache is not None:
        check_disk(plan, boundaries - plan['cache_budget'], T, cache.dir or cache.root)
    if progress:
        print_log(describe_plan(plan, T, chunk_size is None,
                                choose_cache_budget and cache is not None), logger='current')
    return plan


def convert_backbone(backbone, batches: List[Tensor], T_list: Sequence[int],
                     cfg: Optional[ConversionConfig] = None, chunk_size: Optional[int] = None,
                     progress: bool = True, cache: Optional[CalibrationCache] = None,
                     max_sites: Optional[int] = None,
                     after_site: Optional[Callable[[str], None]] = None,
                     memory_budget: Optional[int] = None,
                     choose_cache_budget: bool = False) -> dict:
    """Convert a SpikingBackbone for every T in ``T_list``; returns timings and stats.

    ``cache`` holds calibration's per-batch tensors (RAM up to its budget, files
    beyond); the caller owns it and closes it (default: unbounded, in RAM).
    ``memory_budget`` (bytes, the whole process): the time chunk (unless ``chunk_size``)
    and, with ``choose_cache_budget``, the cache's RAM are chosen so that calibration fits
    it (:func:`~snn_det.runtime.memory.plan_calibration`), the expected peak is printed
    before calibrating, and a calibration that cannot fit is refused naming the fix.
    Without it, the chunk is chosen from the free memory.
    ``max_sites`` calibrates only the first sites and ``after_site`` is called after each
    (profiling; see :func:`calibrate`)."""
    cfg = cfg or backbone.conversion
    backbone.conversion = cfg
    graph = backbone.graph
    acts = backbone.site_activations() or None
    was_training = backbone.training
    backbone.eval()
    timings = {}
    t0 = time.perf_counter()
    observers = observe(graph, batches, acts, cfg.max_samples, cfg.seed)
    timings['observe'] = time.perf_counter() - t0
    per_T = {}
    device = next(iter(backbone.parameters())).device
    T_list = list(dict.fromkeys(backbone._check_T(T) for T in T_list))
    chunks = {T: chunk_size for T in T_list}
    keeps = cache is None or cache.current_limit != 0
    held, boundaries = {}, {}
    if cfg.calib and memory_budget is not None:   # planned once the observers are gone
        largest = max((o.largest_batch for o in observers.values()), default=0)
        on_host = device.type != 'cuda'
        for T in T_list:
            if not on_host and chunk_size is None:   # the chunk lives on the device
                chunks[T] = choose_chunk_size(observers, T, cfg.calib, len(batches),
                                              memory_budget, device, keeps_products=keeps)
    elif cfg.calib:          # a time chunk that fits, or a refusal naming the fix
        budget = cache.budget if cache is not None else None
        for T in T_list:
            if chunk_size is None:
                chunks[T] = choose_chunk_size(observers, T, cfg.calib, len(batches), budget,
                                              device, keeps_products=keeps)
            est = check_calibration_fits(observers, T, chunks[T], cfg.calib, len(batches),
                                         budget, device, keeps_products=keeps)
            if progress:
                how = ', chosen to fit the free memory' if chunk_size is None and chunks[T] \
                    else ''
                print_log(f'calibration at T={T}: expected peak {format_bytes(est["total"])} '
                          f'(time chunk {chunks[T] or T} of {T} steps{how})', logger='current')
    # thresholds for every T first: the observers' samples (up to ``max_samples`` floats
    # per site, ~0.8 GB for R50's 49 sites) are then let go before calibration starts
    nets, t_thr = {}, {}
    for T in T_list:
        t1 = time.perf_counter()
        nets[T] = build_spiking_net(graph, observers, T, cfg, acts)
        t_thr[T] = time.perf_counter() - t1
        if cfg.calib and memory_budget is not None:    # what the cache would hold
            held[T] = held_bytes(observers, T, cfg.calib, len(batches), memory_budget, None,
                                 keeps, product_sites(graph, nets[T]))
            boundaries[T] = held_bytes(observers, T, cfg.calib, len(batches), memory_budget,
                                       None, False)
    del observers
    release_free_memory()
    plans = {}
    if held:
        for T in T_list:
            plans[T] = _plan(T, largest if on_host else 0, held[T], cfg, memory_budget,
                             chunks[T], cache, choose_cache_budget, progress, batches,
                             boundaries[T])
            chunks[T] = plans[T]['chunk_size'] if on_host else chunks[T]
    for T in T_list:
        net, t1 = nets.pop(T), time.perf_counter()
        if T in plans and choose_cache_budget and cache is not None:
            cache.budget = plans[T]['cache_budget']
        if progress and cfg.calib:
            print_log(f'calibrating T={T} ({"+".join(cfg.calib)}) over {len(graph.sites)} '
                      f'sites', logger='current')
        steps = calibrate(graph, net, batches, cfg, chunks[T], targets_at(acts, T), progress,
                          cache, max_sites, after_site)
        net.to(device)
        backbone.add_spiking_net(net)
        per_T[T] = dict(thresholds=t_thr[T], **steps,
                        total=t_thr[T] + time.perf_counter() - t1)
        if T in plans:       # what was expected of memory, beside what it took
            per_T[T]['memory_plan'] = dict(plans[T]['parts'], budget=plans[T]['budget'],
                                           chunk_size=chunks[T] or T,
                                           cache_budget=plans[T]['cache_budget'],
                                           disk=plans[T].get('disk', 0))
    backbone.train(was_training)
    timings['per_T'] = per_T
    timings['total'] = time.perf_counter() - t0
    return timings
