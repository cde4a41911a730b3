"""Generate the embedded synthetic detection + classification data.

    python tools/make_data.py                       # data/synth, seed 0, default sizes
    python tools/make_data.py --out /tmp/synth --num-train 200 --num-val 40 --workers 2
    python tools/make_data.py --dataset neon-trees  # data/neon_trees (docs/neon_trees.md)

Nothing is regenerated when ``<out>/meta.json`` records the same parameters and
generator version and the files still match its checksum, unless ``--force``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn_det.datasets.neon_trees import NeonTreesError, build_neon_trees_data  # noqa: E402
from snn_det.datasets.synthetic import build_synthetic_data  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', choices=['synth', 'neon-trees'], default='synth',
                        help='synth: generated shapes; neon-trees: real aerial tree crowns')
    parser.add_argument('--out', default=None,
                        help='output root (default data/synth or data/neon_trees)')
    parser.add_argument('--src', default=None, help='neon-trees: the deepforest wheel or a '
                        'folder of images + VOC XML (default: the cached wheel, fetched)')
    parser.add_argument('--test-images', default=None,
                        help='neon-trees: comma-separated held-out image names')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=2000, help='detection train images')
    parser.add_argument('--num-val', type=int, default=320, help='detection val images')
    parser.add_argument('--num-test', type=int, default=400,
                        help='held-out detection test images (docs/evaluation.md)')
    parser.add_argument('--num-cls-train', type=int, default=3000,
                        help='classification train images')
    parser.add_argument('--num-cls-val', type=int, default=600, help='classification val images')
    parser.add_argument('--num-cls-test', type=int, default=600,
                        help='held-out classification test images')
    parser.add_argument('--cls-size', type=int, default=32, help='classification image side')
    parser.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1),
                        help='worker processes (the output does not depend on it)')
    parser.add_argument('--force', action='store_true', help='regenerate even if up to date')
    return parser.parse_args()


def main() -> None:
    """Build the data and report what was done."""
    args = parse_args()
    start = time.perf_counter()
    if args.dataset == 'neon-trees':
        out = args.out or 'data/neon_trees'
        try:
            meta, built = build_neon_trees_data(
                out, src=args.src, force=args.force,
                test_images=args.test_images.split(',') if args.test_images else None)
        except NeonTreesError as e:
            sys.exit(f'[neon-trees] error: {e}')
        for split, info in meta['splits'].items():
            print(f'[neon-trees] {split}: {info["images"]} images, {info["boxes"]} boxes '
                  f'(+{info["ignored"]} ignored), from {", ".join(info["sources"])}')
        print(f'[neon-trees] {out} {"written" if built else "is up to date"} '
              f'(checksum {meta["checksum"][:12]}) in {time.perf_counter() - start:.1f}s')
        return
    args.out = args.out or 'data/synth'
    meta, built = build_synthetic_data(
        args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
        num_test=args.num_test,
        num_cls_train=args.num_cls_train, num_cls_val=args.num_cls_val,
        num_cls_test=args.num_cls_test, cls_size=args.cls_size, workers=args.workers,
        force=args.force)
    elapsed = time.perf_counter() - start
    if not built:
        print(f'[synth] {args.out} is up to date (checksum {meta["checksum"][:12]}), '
              f'nothing to do; use --force to regenerate')
        return
    for split, info in meta['detection'].items():
        print(f'[synth] detection {split}: {info["images"]} images, '
              f'{info["annotations"]} objects, area ranges {info["area_ranges"]}')
    print(f'[synth] wrote {args.out} in {elapsed:.1f}s (checksum {meta["checksum"][:12]})')


if __name__ == '__main__':
    main()
