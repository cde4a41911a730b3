"""Memory and time of conversion and simulation at real scale (resources, not accuracy).

    python tools/scale_benchmark.py configs/benchmarks/scale_r50_coco.py
        [--detectors NAME ...] [--runs I ...] [--max-sites N] [--device cuda]
        [--out-root docs/results] [--render]

Each run of the config (calibration images x T) runs in a fresh process; the rows are
merged into ``<out-root>/<name>/results.{json,md}`` (see :mod:`snn_det.benchmarks.scale`).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from snn_det.benchmarks.scale import run_scale_benchmark  # noqa: E402
from snn_det.benchmarks.scale_report import _markdown, _row_key  # noqa: E402,F401


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', nargs='?', help='configs/benchmarks/scale_*.py')
    p.add_argument('--detectors', nargs='+', help='only these detector names')
    p.add_argument('--runs', nargs='+', type=int,
                   help="these run indices of the config (default: every run not marked 'extra')")
    p.add_argument('--max-sites', type=int, default=None,
                   help='calibrate only the first N spiking sites of convert runs')
    p.add_argument('--device', default='cpu',
                   help="where the model and calibration run: 'cpu' (default) or 'cuda'")
    p.add_argument('--out-root', default=None, help='default: docs/results')
    p.add_argument('--render', action='store_true',
                   help='only rewrite results.md and the plot from the results.json')
    args = p.parse_args(argv)
    if not args.config or not osp.isfile(args.config):
        sys.exit(f"error: benchmark config '{args.config}' does not exist")
    if args.device not in ('cpu', 'cuda'):
        sys.exit(f"error: --device must be 'cpu' or 'cuda', got '{args.device}'")
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            sys.exit('error: --device cuda: torch sees no CUDA device on this machine')
    path = run_scale_benchmark(args.config, args.detectors, args.runs, args.max_sites,
                               args.device, args.out_root, args.render)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
