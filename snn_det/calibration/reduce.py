"""Reductions across ranks, so that every rank of a distributed conversion calibrates
the same network from the union of the ranks' calibration images.

Under ``--launcher pytorch`` each rank holds its own share of the calibration
images.  Every statistic a calibration step computes (means, losses) is summed over
the ranks and every gradient averaged, so the updates -- and with them the
converted networks -- are the same on all ranks (an all-reduce leaves the same bytes
on every rank).  Outside a distributed run these are plain local computations.
"""
from typing import Iterable, Tuple

import torch
from torch import Tensor


def world_size() -> int:
    from mmengine.dist import get_world_size
    return get_world_size()


def reduce_mean(total: Tensor, count: int) -> Tensor:
    """``total / count``, both summed over all ranks."""
    if world_size() > 1:
        from mmengine.dist import all_reduce
        cnt = torch.tensor(float(count), device=total.device)
        total = total.clone()
        all_reduce(total, op='sum')
        all_reduce(cnt, op='sum')
        return total / cnt
    return total / count


def sum_over_ranks(*values: float) -> Tuple[float, ...]:
    """Python numbers summed over all ranks (in float64)."""
    if world_size() <= 1:
        return tuple(values)
    from mmengine.dist import all_reduce
    t = torch.tensor(values, dtype=torch.float64)
    all_reduce(t, op='sum')
    return tuple(t.tolist())


def average_gradients_(params: Iterable[Tensor]) -> None:
    """Replace each parameter's gradient by its mean over the ranks (data parallelism)."""
    if world_size() <= 1:
        return
    from mmengine.dist import all_reduce
    for p in params:
        if p.grad is not None:
            all_reduce(p.grad, op='mean')
