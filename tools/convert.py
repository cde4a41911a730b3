"""Convert the backbone of an MMDetection detector (or classifier) into a spiking network.

    python tools/convert.py CONFIG CHECKPOINT --T 32 [--threshold mmse|max|percentile]
        [--channel-wise|--layer-wise] [--shift potential|bias|none] [--calib lcp|acp|...]
        [--calib-images 128] [--memory-budget auto|8G] [--calib-cache-budget SIZE]
        [--calib-current-limit auto] [--calib-channels-last]
        [--work-dir DIR] [--cfg-options k=v ...]
        [--launcher none|pytorch]

Writes ``<work-dir>/<name>_snn.pth`` (loads with torch.load(weights_only=True))
and ``<work-dir>/<name>_snn.py`` (a config that builds the converted model and
loads that checkpoint), then prints a summary (energy against the ANN's also in
``<name>_energy.json``).  Nothing is written if anything fails.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import get_rank  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import snn_det  # noqa: E402
from snn_det.apis import (check_T_list, convert_model, save_converted, summarize,  # noqa: E402
                          wrap_backbone_cfg)
from snn_det.apis.cli import add_conversion_args, build_conversion, memory_limits  # noqa: E402
from snn_det.apis.convert import unwrap  # noqa: E402
from snn_det.apis.dist import finish_launcher, prepare_launcher  # noqa: E402
from snn_det.analysis.firing import measure_firing, plot_firing_rates  # noqa: E402
from snn_det.analysis.energy import compare_all, energy_report  # noqa: E402
from snn_det.runtime.cache import parse_current_limit  # noqa: E402
from snn_det.utils.checkpoint import load_checkpoint_file, write_text_atomic  # noqa: E402
from snn_det.utils.outputs import OutputGuard  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert a detector backbone into an SNN')
    parser.add_argument('config', help='MMDetection config of the (ANN) model')
    parser.add_argument('checkpoint', help='checkpoint of the ANN model')
    add_conversion_args(parser)
    parser.add_argument('--work-dir', help='where to write the converted checkpoint/config')
    parser.add_argument('--name', help='output name (default: <config name>_snn)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        T_list = check_T_list(args.T)
        if not osp.isfile(args.config):
            raise FileNotFoundError(f"config '{args.config}' does not exist")
        load_checkpoint_file(args.checkpoint)            # readable, weights-only safe
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        prepare_launcher(cfg, args.launcher)
        base_conv = dict(cfg.model.get('backbone', {}).get('conversion') or {})
        conversion = build_conversion(base_conv, args)
        memory_budget, cache_budget = memory_limits(args)
        try:
            current_limit = parse_current_limit(args.calib_current_limit)
        except ValueError as e:
            raise ValueError(f'--calib-current-limit: {e}, or auto') from None
        if args.calib_images < 1:
            raise ValueError(f'--calib-images must be at least 1, got {args.calib_images}')
    except Exception as e:   # one clear line, nothing written
        sys.exit(f'error: {e}')
    name = args.name or osp.splitext(osp.basename(args.config))[0] + '_snn'
    work_dir = args.work_dir or osp.join('work_dirs', name)
    guard = OutputGuard(work_dir)
    try:
        with guard:
            result = _convert(args, cfg, T_list, conversion,
                              (cache_budget, current_limit, memory_budget),
                              name, work_dir, guard)
    except KeyboardInterrupt:
        sys.exit('interrupted: nothing was written')
    except (ValueError, KeyError, TypeError, RuntimeError, MemoryError, OSError,
            AssertionError) as e:
        if os.environ.get('SNN_DET_DEBUG'):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f'error: {msg} (nothing was written)')
    finish_launcher()
    return result


def _convert(args, cfg, T_list, conversion, cache_limits, name, work_dir, guard):
    cache_budget, current_limit, memory_budget = cache_limits
    wrap_backbone_cfg(cfg, T_list[0], conversion.to_dict(), args.chunk_size, args.scope)
    cfg.work_dir = osp.join(work_dir, 'logs')
    cfg.load_from = args.checkpoint
    cfg.resume = False

    t0 = time.perf_counter()
    logs_existed = osp.isdir(cfg.work_dir)
    runner = Runner.from_cfg(cfg)
    # what the runner wrote of a failed run: its timestamped logs and the config dump
    if not logs_existed:
        guard.remove_on_failure(cfg.work_dir)
    else:
        guard.remove_on_failure(runner.log_dir)
    runner.load_or_resume()
    print(f'converting {args.config} for T={T_list} with {conversion.describe()}, '
          f'{args.calib_images} calibration images', flush=True)
    timings = convert_model(runner.model, cfg, T_list, conversion, args.calib_images,
                            args.calib_batch_size, args.chunk_size, cache_budget=cache_budget,
                            cache_dir=args.calib_cache_dir or work_dir,
                            current_limit=current_limit, memory_budget=memory_budget)
    batches = timings.pop('batches')
    backbone = unwrap(runner.model).backbone
    firing = {}
    for T in T_list:    # firing rates and energy on (a few of) the calibration images
        firing[T] = measure_firing(backbone.snn[f'T{T}'], batches[:2], T, args.chunk_size)
    energy = compare_all(unwrap(runner.model), batches[:2], firing, backbone.scope)  # vs ANN
    meta = dict(snn_det_version=snn_det.__version__, source_config=osp.abspath(args.config),
                energy=energy, source_checkpoint=osp.abspath(args.checkpoint), converted_T=T_list,
                conversion=conversion.to_dict(), timings=timings,
                firing={T: {k: v for k, v in f.items() if k != 'rates'} for T, f in firing.items()})
    if get_rank() != 0:       # statistics were averaged across ranks; rank 0 writes
        return None, None
    ckpt, cfg_path = save_converted(runner.model, cfg, work_dir, name, meta)
    png = osp.join(work_dir, f'{name}_firing_rates.png')
    plot_firing_rates({T: f['rates'] for T, f in firing.items()}, png, name)
    print(summarize(runner.model))
    print(energy_report(firing, energy, tuple(batches[0].shape[-2:])))
    ejson = osp.join(work_dir, f'{name}_energy.json')     # the ANN's beside the SNN's
    write_text_atomic(json.dumps(energy, indent=1) + '\n', ejson)
    print(f'conversion took {time.perf_counter() - t0:.1f} s '
          f'(observe {timings["observe"]:.1f} s; per T: '
          + ', '.join(f'T={t}: {v["total"]:.1f} s' for t, v in timings['per_T'].items()) + ')')
    print(f'wrote {ckpt}\nwrote {cfg_path}\nwrote {ejson}; firing rates plotted in {png}')
    print(f'evaluate with: python tools/test.py {cfg_path} {ckpt} --T {" ".join(map(str, T_list))}')
    return ckpt, cfg_path


if __name__ == '__main__':
    main()
