"""The main job on the embedded default, in one command.

    python tools/run_default.py [--detectors retinanet faster-rcnn yolov3] [--T 16 32 64]
        [--convert-T 32] [--split test|val] [--val-images N] [--calib lcp]
        [--cfg-options KEY=VALUE ...] [--no-data]

Makes the generated dataset if it is missing, converts each shipped detector
(``checkpoints/``) with ``tools/convert.py ... --T <convert-T>``, evaluates the
ANN and the SNN at each T with ``tools/test.py`` on the held-out test split (all of
its images, with 95% bootstrap intervals), and prints the ANN-vs-SNN table.
Default: RetinaNet, converted for T=32 (MMSE channel-wise thresholds, ClipRound
shift, bias calibration on 16 train images) and tested at T = 8, 16, 32.

The table is also saved as ``work_dirs/benchmarks/main_job/results.json`` (the
format of tools/benchmark.py), which ``tools/collect_results.py`` takes into
``docs/results/`` like any benchmark.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))

import snn_det  # noqa: F401,E402
from snn_det.analysis.results import write_result_files  # noqa: E402
from snn_det.benchmarks.results_file import time_row  # noqa: E402
from snn_det.datasets import build_synthetic_data  # noqa: E402
from snn_det.utils.checkpoint import load_checkpoint_file  # noqa: E402
from snn_det.utils.provenance import provenance  # noqa: E402

NAMES = {'retinanet': 'RetinaNet R18n', 'faster-rcnn': 'Faster R-CNN R18n',
         'yolov3': 'YOLOv3 D53n', 'retinanet-r50n': 'RetinaNet R50n',
         'faster-rcnn-r50n': 'Faster R-CNN R50n'}
DETECTORS = {
    'retinanet': ('configs/synth/retinanet_r18n_fpn_12e_synth.py',
                  'checkpoints/retinanet_r18n_fpn_12e_synth.pth'),
    'faster-rcnn': ('configs/synth/faster-rcnn_r18n_fpn_8e_synth.py',
                    'checkpoints/faster-rcnn_r18n_fpn_8e_synth.pth'),
    'yolov3': ('configs/synth/yolov3_d53n_8e_synth.py', 'checkpoints/yolov3_d53n_8e_synth.pth.gz'),
    # ResNet-50 depth (49 spiking sites, seed 001 Table 4's depth)
    'retinanet-r50n': ('configs/synth/retinanet_r50n_fpn_8e_synth.py',
                       'checkpoints/retinanet_r50n_fpn_8e_synth.pth'),
    'faster-rcnn-r50n': ('configs/synth/faster-rcnn_r50n_fpn_8e_synth.py',
                         'checkpoints/faster-rcnn_r50n_fpn_8e_synth.pth.gz'),
}


def load_tool(name: str):
    """``tools/<name>.py`` as a module named ``snn_det_tools_<name>``: importing it as
    ``test`` would shadow (or be shadowed by) the standard library's ``test`` package."""
    spec = importlib.util.spec_from_file_location(f'snn_det_tools_{name}',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--detectors', nargs='+', default=['retinanet'], choices=list(DETECTORS))
    p.add_argument('--T', nargs='+', type=int, default=[8, 16, 32])
    p.add_argument('--convert-T', nargs='+', type=int, default=[32])
    p.add_argument('--calib', default='lcp')
    p.add_argument('--calib-images', type=int, default=16)
    p.add_argument('--split', choices=['test', 'val'], default='test',
                   help="the generated data's split to evaluate on (default: the held-out "
                        'test split)')
    p.add_argument('--val-images', type=int, default=None,
                   help='evaluate on the first N images of the split (default: all)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help="overrides of the detectors' configs, passed to convert and test "
                        '(e.g. another data_root)')
    p.add_argument('--no-data', action='store_true',
                   help='do not generate data/synth (the configs point elsewhere)')
    p.add_argument('--work-dir', default='work_dirs/default')
    p.add_argument('--results-dir', default=osp.join(ROOT, 'work_dirs/benchmarks/main_job'),
                   help='where the table is saved as results.{json,csv,md}')
    args = p.parse_args(argv)
    convert_tool, test_tool = load_tool('convert'), load_tool('test')
    t0 = time.perf_counter()
    built = False if args.no_data else build_synthetic_data(osp.join(ROOT, 'data/synth'))[1]
    data_seconds = time.perf_counter() - t0                    # a checksum when already there
    tables, results, times = [], [], []
    for name in args.detectors:
        cfg, ckpt = (osp.join(ROOT, x) for x in DETECTORS[name])
        if not osp.isfile(ckpt):
            sys.exit(f'error: checkpoint {ckpt} is missing (train it with tools/train.py {cfg})')
        work = osp.join(args.work_dir, name)
        opts = ['--cfg-options', *args.cfg_options] if args.cfg_options else []
        if args.val_images:
            opts_test = ['--cfg-options', *args.cfg_options,
                         f'test_dataloader.dataset.indices={args.val_images}']
        else:
            opts_test = opts
        ck, cf = convert_tool.main([cfg, ckpt, '--T', *map(str, args.convert_T), '--calib',
                                    args.calib, '--calib-images', str(args.calib_images),
                                    '--work-dir', work] + opts)
        rows = test_tool.main([cf, ck, '--T', *map(str, args.T), '--split', args.split,
                               '--work-dir', work] + opts_test)
        from snn_det.apis.evaluate import format_table
        tables.append(f'### {name}\n\n' + format_table(rows, ['AP', 'AP50', 'AP75']))
        method = f'SNN ({args.calib}, converted for T={"/".join(map(str, args.convert_T))})'
        for r in rows:
            metrics = {k: v for k, v in r.items() if k not in ('model', 'T', 'calib_T')}
            results.append(dict(detector=NAMES[name], method=method if r['T'] else 'ANN',
                                T=r['T'], **metrics))
        timings = load_checkpoint_file(ck)['meta']['timings']
        for T, t in timings['per_T'].items():
            times.append(time_row(NAMES[name], method, T, timings['observe'], t))
    print('\n\n'.join(tables))
    given = sys.argv[1:] if argv is None else argv
    cmd = ' '.join(['python tools/run_default.py'] + list(given))
    write_result_files(dict(name='main_job', config='tools/run_default.py',
                            command=cmd, T=args.T, seed=0, split=args.split, results=results,
                            conversion_times=times, complete=True,
                            wall_seconds=round(time.perf_counter() - t0, 1),
                            load_average=round(os.getloadavg()[0], 1),   # last minute
                            data_seconds=round(data_seconds, 1), data_built=built,
                            provenance=provenance()), args.results_dir, root=ROOT)
    print(f'saved in {args.results_dir}')
    print(f'\nmain job finished in {time.perf_counter() - t0:.0f} s')


if __name__ == '__main__':
    main()
