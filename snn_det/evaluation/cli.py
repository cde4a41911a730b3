"""Command-line options of the evaluation protocol, shared by the tools."""
from __future__ import annotations

import argparse

from .bootstrap import DEFAULT_RESAMPLES
from .splits import SPLITS


def add_evaluation_args(parser: argparse.ArgumentParser) -> None:
    """``--split``, ``--bootstrap N`` and ``--bootstrap-seed`` (docs/evaluation.md)."""
    parser.add_argument('--split', choices=SPLITS, default=None,
                        help="evaluate on this split of the generated data ('test': the "
                             "held-out images every reported table uses; default: the "
                             "config's test_dataloader, val in the shipped configs)")
    parser.add_argument('--bootstrap', type=_non_negative, default=DEFAULT_RESAMPLES,
                        metavar='N', help='resamples of the test images for the 95%% '
                        'intervals of AP and of the SNN/ANN ratio (0: no intervals)')
    parser.add_argument('--bootstrap-seed', type=int, default=0,
                        help='seed of the resampled images (the same for every model)')


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value
