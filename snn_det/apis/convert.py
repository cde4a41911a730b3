"""Convert a detector (or classifier) config + checkpoint, and save the result."""
import copy
import os
import os.path as osp
import time
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from ..runtime.cache import CalibrationCache
from ..runtime.states import CachedImages
from ..conversion.config import ConversionConfig
from ..pipeline import convert_backbone
from ..utils.checkpoint import save_checkpoint_atomic, to_plain, write_text_atomic
from ..utils.wrappers import unwrap  # noqa: F401  (tools import it from here)
from .calib_data import build_calib_batches

SPIKING_TYPES = ('SpikingBackbone', 'snn_det.SpikingBackbone')
DETECTOR_TYPES = ('SpikingDetector', 'snn_det.SpikingDetector')


def check_T_list(T_list: Sequence) -> List[int]:
    """Validate ``--T`` values: positive integers."""
    out = []
    for t in T_list:
        try:
            v = int(t)
        except (TypeError, ValueError):
            raise ValueError(f'T must be a positive integer number of time steps, got {t!r}') \
                from None
        if v != float(t) or v < 1:
            raise ValueError(f'T must be a positive integer number of time steps, got {t!r}')
        out.append(v)
    if not out:
        raise ValueError('give at least one T')
    return out


def ensure_custom_imports(cfg: Config) -> None:
    """Make the config import snn_det (so its modules are registered when rebuilt)."""
    ci = cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False)
    imports = list(ci.get('imports', []))
    if 'snn_det' not in imports:
        imports.append('snn_det')
    ci['imports'] = imports
    cfg.custom_imports = ci


def is_spiking_cfg(backbone_cfg) -> bool:
    return backbone_cfg.get('type') in SPIKING_TYPES


def set_scope_cfg(cfg: Config, scope: Optional[str]) -> None:
    """Set the spiking scope (``backbone`` / ``neck`` / ``full``) of a config whose
    ``model.backbone`` is a SpikingBackbone: beyond the backbone the model is built as
    ``SpikingDetector`` around the detector's own type."""
    from ..conversion.graphs.detector import check_scope
    bb = cfg.model.backbone
    scope = check_scope(scope if scope is not None else bb.get('scope', 'backbone'))
    bb.scope = scope
    is_wrapped = cfg.model.get('type') in DETECTOR_TYPES
    if scope != 'backbone' and not is_wrapped:
        if cfg.model.get('neck') is None:
            raise ValueError(f"--scope {scope} needs a model with a neck; "
                             f"{cfg.model.get('type')} has none")
        cfg.model.detector_type = cfg.model.type
        cfg.model.type = 'SpikingDetector'
    elif scope == 'backbone' and is_wrapped:
        cfg.model.type = cfg.model.pop('detector_type')


def config_scope(cfg: Config) -> str:
    bb = cfg.model.get('backbone') or {}
    return bb.get('scope', 'backbone') if is_spiking_cfg(bb) else 'backbone'


def wrap_backbone_cfg(cfg: Config, T: int, conversion: Optional[dict] = None,
                      chunk_size: Optional[int] = None, scope: Optional[str] = None) -> None:
    """Put ``cfg.model.backbone`` (or ``cfg.model.backbone`` of a classifier) into a
    SpikingBackbone, or update the options of one that is already there; ``scope``
    (default: the config's, else ``backbone``) says how far the spiking part reaches."""
    bb = cfg.model.get('backbone')
    if bb is None:
        raise KeyError("config has no 'model.backbone' to convert")
    if is_spiking_cfg(bb):
        new = copy.deepcopy(bb)
        merged = dict(new.get('conversion') or {})
        merged.update(conversion or {})
        new.conversion = merged
    else:
        new = ConfigDict(type='SpikingBackbone', backbone=copy.deepcopy(bb),
                         conversion=dict(conversion or {}))
    new.T = T
    new.converted_T = []
    if chunk_size:
        new.chunk_size = chunk_size
    cfg.model.backbone = new
    set_scope_cfg(cfg, scope)
    ensure_custom_imports(cfg)


def convert_model(model, cfg: Config, T_list: Sequence[int], conversion: ConversionConfig,
                  calib_images: int = 128, calib_batch_size: int = 8,
                  chunk_size: Optional[int] = None, progress: bool = True,
                  batches: Optional[list] = None, cache_budget=None,
                  cache_dir: Optional[str] = None, current_limit='auto',
                  memory_budget: Optional[int] = None) -> dict:
    """Collect calibration images through ``cfg`` and convert ``model.backbone``.

    ``memory_budget`` (bytes for the whole process, e.g. from
    :func:`~snn_det.runtime.memory.default_memory_budget`): the time chunk (when
    ``chunk_size`` is unset) and, when ``cache_budget`` is unset, the cache's RAM are
    chosen to fit it and the expected peak is printed before calibrating.

    Calibration keeps its per-batch tensors (spike trains in bits) in RAM up to
    ``cache_budget`` bytes (``'4G'`` etc.; ``None``: no limit) and spills the rest to
    a temporary directory under ``cache_dir``, removed when this returns or fails.
    ``current_limit`` bounds the convolution products kept between a site's two passes
    (:mod:`~snn_det.runtime.currents`; ``'auto'``, bytes, or ``0`` for none).
    Returns timings and the cache's peak use; the first two calibration batches are
    under ``'batches'``."""
    model = unwrap(model)
    model.eval()
    choose_cache = memory_budget is not None and cache_budget is None
    if choose_cache:     # the images go in first: an eighth of the budget until planned
        cache_budget = memory_budget // 8
    with CalibrationCache(cache_budget, cache_dir, current_limit) as cache:
        t0 = time.perf_counter()
        if batches is None:     # the images too are kept in the cache, within its budget
            batches = build_calib_batches(cfg, model, calib_images, calib_batch_size,
                                          conversion.seed, into=CachedImages(cache))
        t_data = time.perf_counter() - t0
        timings = convert_backbone(model.backbone, batches, T_list, conversion, chunk_size,
                                   progress, cache, memory_budget=memory_budget,
                                   choose_cache_budget=choose_cache)
        timings['cache'] = cache.stats()
        timings['calib_images'] = sum(batches[i].shape[0] for i in range(len(batches)))
        first = [batches[i] for i in range(min(2, len(batches)))]
    if progress:
        print_log(cache.describe(), logger='current')
    timings['data'] = t_data
    timings['batches'] = first      # the first two batches (firing rates, energy)
    return timings


def converted_config(cfg: Config, model, checkpoint_path: str) -> Config:
    """The config that rebuilds the converted model and loads ``checkpoint_path``."""
    out = copy.deepcopy(cfg)
    bb = unwrap(model).backbone
    out.model.backbone.converted_T = bb.converted_T
    out.model.backbone.conversion = bb.conversion.to_dict()
    out.model.backbone.T = bb.converted_T[0] if bb.T not in bb.converted_T else bb.T
    inner = out.model.backbone.backbone
    if inner.get('init_cfg') is not None:
        inner.init_cfg = None          # everything comes from the converted checkpoint
    out.load_from = osp.abspath(checkpoint_path)
    out.resume = False
    return out


def save_converted(model, cfg: Config, work_dir: str, name: str, meta: dict) -> tuple:
    """Write ``<name>.pth`` (weights-only loadable) and ``<name>.py``; both atomically."""
    os.makedirs(work_dir, exist_ok=True)
    ckpt_path = osp.join(work_dir, f'{name}.pth')
    cfg_path = osp.join(work_dir, f'{name}.py')
    model = unwrap(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    full_meta = to_plain(dict(meta))
    if getattr(model, 'dataset_meta', None):
        full_meta['dataset_meta'] = to_plain(dict(model.dataset_meta))
    new_cfg = converted_config(cfg, model, ckpt_path)
    # both files complete under temporary names first, then renamed into place together
    tmp_ckpt, tmp_cfg = ckpt_path + '.tmp', cfg_path + '.tmp'
    try:
        save_checkpoint_atomic({'meta': full_meta, 'state_dict': state}, tmp_ckpt)
        write_text_atomic(new_cfg.pretty_text, tmp_cfg)
        os.replace(tmp_cfg, cfg_path)
        os.replace(tmp_ckpt, ckpt_path)
    finally:
        for tmp in (tmp_ckpt, tmp_cfg):
            if osp.exists(tmp):
                os.remove(tmp)
    return ckpt_path, cfg_path


def scope_report(model) -> str:
    """Which parts spike, what is read out as a time average and what stays analog."""
    model = unwrap(model)
    bb = model.backbone
    graph = bb.graph
    spiking = getattr(graph, 'spiking_parts', ['backbone'])
    analog = [f'{name} ({type(getattr(model, name)).__name__})'
              for name in ('neck', 'rpn_head', 'roi_head', 'bbox_head', 'head')
              if getattr(model, name, None) is not None and name not in spiking]
    if bb.scope == 'full' and getattr(graph, 'barrier', None) is not None:
        head = graph.parts[-1]
        readout = (f'{head.pred_rpn} (per level; decoded into proposals), then '
                   f'{head.pred_roi} (per RoI, in a second phase on those proposals)')
    elif bb.scope == 'full':
        head = graph.parts[-1]
        preds = sorted({u.split('@')[0] for u in head.units
                        if not any(s.owner == u for s in head.sites)})
        readout = f'prediction convolutions {", ".join(preds)} (per level)'
    elif bb.scope == 'neck':
        readout = 'the neck\'s outputs'
    else:
        readout = 'the backbone\'s outputs'
    return (f'scope={bb.scope}: spiking {", ".join(spiking)}; time-averaged readout: '
            f'{readout}; analog (ANN on the readout): {", ".join(analog) or "nothing"}')


def summarize(model) -> str:
    """Spiking scope, neurons per stage and threshold statistics of every converted T."""
    bb = unwrap(model).backbone
    lines = [scope_report(model)]
    stages = {}
    for s in bb.graph.sites:
        stages.setdefault(s.stage, []).append(s)
    for T in bb.converted_T:
        net = bb.snn[f'T{T}']
        lines.append(f'T={T}: {len(bb.graph.sites)} spiking sites, '
                     f'{sum(s.channels for s in bb.graph.sites)} neuron channels')
        for stage, sites in stages.items():
            th = torch.cat([net.neuron(s.name).threshold.reshape(-1) for s in sites])
            signed = sum(1 for s in sites if net.neuron(s.name).signed)
            lines.append(f'  {stage:<18} sites={len(sites):>3} (signed {signed:>2}) '
                         f'threshold min/median/max = {th.min():.3f}/{th.median():.3f}/'
                         f'{th.max():.3f}')
    return '\n'.join(lines)
