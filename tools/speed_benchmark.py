"""Simulation speed of the spiking backbones, against the ANN and against SpikingJelly.

    python tools/speed_benchmark.py configs/benchmarks/simulation_speed.py
        [--detectors NAME ...] [--threads 1 2] [--out-root docs/results]

What is measured and how: :mod:`snn_det.benchmarks.speed`.  Results:
``<out-root>/<name>/results.{json,md}``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='configs/benchmarks/simulation_speed.py')
    p.add_argument('--detectors', nargs='+', help='only these detector names')
    p.add_argument('--threads', nargs='+', type=int, help='only these thread counts')
    p.add_argument('--out-root', default=osp.join(ROOT, 'docs', 'results'))
    p.add_argument('--full-scope-only', action='store_true',
                   help='measure only the fully spiking detectors (issue 13); the other '
                        'columns of their rows are kept from the results file')
    args = p.parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f"error: benchmark config '{args.config}' does not exist")
    from mmdet.utils import register_all_modules

    import snn_det  # noqa: F401
    from snn_det.benchmarks.speed import run_speed_benchmark
    from snn_det.datasets import build_synthetic_data
    register_all_modules()
    build_synthetic_data(osp.join(ROOT, 'data/synth'))
    res_path = run_speed_benchmark(args.config, args.out_root, args.detectors, args.threads,
                                   args.full_scope_only)
    print(open(osp.join(osp.dirname(res_path), 'results.md')).read())
    print(f'wrote {res_path}')


if __name__ == '__main__':
    main()
