"""Rerun a benchmark from its config and regenerate its tables and plots.

    python tools/benchmark.py configs/benchmarks/NAME.py [--out-root work_dirs/benchmarks]
        [--detectors NAME ...] [--methods NAME ...] [--T 128 ...] [--launcher none|pytorch]

Writes work_dirs/benchmarks/NAME/{results.md,results.json,results.csv,*.png}.
The same config and seed give the same numbers.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import snn_det  # noqa: F401,E402
from snn_det.benchmarks.accuracy import run_benchmark  # noqa: E402
from snn_det.apis.dist import finish_launcher  # noqa: E402
from snn_det.datasets import build_synthetic_data  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description='Run a benchmark config')
    parser.add_argument('config', help='benchmark config (configs/benchmarks/*.py)')
    parser.add_argument('--out-root', default='work_dirs/benchmarks')
    parser.add_argument('--detectors', nargs='+', help='only these detector names')
    parser.add_argument('--methods', nargs='+',
                        help='only these method names (the other rows are kept)')
    parser.add_argument('--T', nargs='+', type=int,
                        help='only these time steps of the config (the other rows are kept)')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='job launcher (torchrun: gloo on the CPU, nccl on GPUs)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--no-data', action='store_true',
                        help='do not generate the embedded dataset if it is missing')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f"error: benchmark config '{args.config}' does not exist")
    if not args.no_data:
        build_synthetic_data('data/synth')
    try:
        result = run_benchmark(args.config, args.out_root, args.detectors, args.methods, args.T,
                               args.launcher)
    except (KeyError, ValueError, FileNotFoundError) as e:   # e.g. a split not generated
        sys.exit(f'error: {e.args[0]}')
    from mmengine.dist import get_rank
    rank = get_rank()
    finish_launcher()
    if rank != 0:
        return
    out = osp.join(args.out_root, result['name'], 'results.md')
    print(open(out).read())
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
