"""Test a detector's ANN and its SNN at each T; prints one table and saves it as JSON.

    python tools/test.py CONFIG CHECKPOINT [--T 8 16 32 64] [--work-dir DIR] [--out PKL]
        [--show] [--show-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch] [--no-ann]
        [--split test] [--bootstrap 1000] [--bootstrap-seed 0] [--energy-images 2]

CONFIG/CHECKPOINT are either a converted pair written by tools/convert.py (each
T uses its own calibration, or the closest converted T, marked in the table) or
an ordinary ANN pair, which is then converted on the fly with the conversion
options below (one calibration per T).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import get_rank  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import snn_det  # noqa: F401,E402
from snn_det.apis import check_T_list, convert_model, is_spiking_cfg, wrap_backbone_cfg  # noqa
from snn_det.apis.cli import add_conversion_args, build_conversion, memory_limits  # noqa: E402
from snn_det.apis.convert import config_scope, ensure_custom_imports  # noqa: E402
from snn_det.apis.dist import finish_launcher, prepare_launcher  # noqa: E402
from snn_det.apis.evaluate import evaluate_per_T  # noqa: E402
from snn_det.apis.test_report import write_test_report  # noqa: E402
from snn_det.evaluation import use_split  # noqa: E402
from snn_det.evaluation.cli import add_evaluation_args  # noqa: E402
from snn_det.utils.checkpoint import load_checkpoint_file  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test the ANN and the SNN at each T')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_conversion_args(parser, default_T=(8, 16, 32, 64))
    parser.add_argument('--work-dir', help='where to save the results table (JSON, plot)')
    parser.add_argument('--out', type=str, help='dump predictions of the last model to a pkl')
    parser.add_argument('--energy-images', type=int, default=2,
                        help='test images on which each T\'s energy is measured against the '
                             'ANN\'s (0: none)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save painted predictions under work_dir/<ts>/DIR')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--no-ann', action='store_true', help='skip the ANN row')
    add_evaluation_args(parser)
    parser.add_argument('--channels-last', action='store_true',
                        help='simulate in channels-last memory layout: faster convolutions '
                             'on CPUs, numbers not bit-identical to the default layout')
    parser.add_argument('--separate-T', action='store_true',
                        help='simulate each T on its own; by default T that share one '
                             'converted network are read out of one simulation to the '
                             'largest of them (same numbers, fewer steps)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='not supported with SNNs')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.tta:
            raise ValueError('--tta is not supported for spiking models')
        T_list = check_T_list(args.T)
        if not osp.isfile(args.config):
            raise FileNotFoundError(f"config '{args.config}' does not exist")
        load_checkpoint_file(args.checkpoint)
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        if args.split:
            use_split(cfg, args.split)
        bb = cfg.model.get('backbone')
        if bb is None:
            raise KeyError("config has no 'model.backbone'")
        converted = is_spiking_cfg(bb) and bool(bb.get('converted_T'))
        if converted and args.scope and args.scope != config_scope(cfg):
            raise ValueError(f'this converted config has scope {config_scope(cfg)!r}; '
                             f'--scope {args.scope} needs a conversion with that scope '
                             '(tools/convert.py --scope, or test the ANN config)')
        conversion = None if converted else build_conversion(bb.get('conversion') or {}
                                                             if is_spiking_cfg(bb) else {}, args)
        memory_budget, cache_budget = memory_limits(args)
        prepare_launcher(cfg, args.launcher)
    except Exception as e:
        sys.exit(f'error: {e}')
    ensure_custom_imports(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if not converted:
        wrap_backbone_cfg(cfg, T_list[0], conversion.to_dict(), args.chunk_size, args.scope)
    elif args.chunk_size:
        cfg.model.backbone.chunk_size = args.chunk_size
    if args.channels_last:
        cfg.model.backbone.channels_last = True
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show or args.show_dir:
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        cfg = trigger_visualization_hook(cfg, args)

    runner = Runner.from_cfg(cfg)
    if args.out is not None:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.load_or_resume()
    if not converted:
        print(f'converting on the fly for T={T_list} with {conversion.describe()}', flush=True)
        convert_model(runner.model, cfg, T_list, conversion, args.calib_images,
                      args.calib_batch_size, args.chunk_size, cache_budget=cache_budget,
                      cache_dir=args.calib_cache_dir or cfg.work_dir,
                      memory_budget=memory_budget)
    rows = evaluate_per_T(runner, T_list, include_ann=not args.no_ann,
                          share_simulation=not args.separate_T, bootstrap=args.bootstrap,
                          bootstrap_seed=args.bootstrap_seed)
    if get_rank() == 0:       # the table, its JSON and plots; energy against the ANN
        write_test_report(runner, rows, cfg.work_dir,
                          dict(config=osp.abspath(args.config),
                               checkpoint=osp.abspath(args.checkpoint), split=args.split),
                          args.energy_images, args.chunk_size, osp.basename(args.config))
    finish_launcher()
    return rows


if __name__ == '__main__':
    main()
