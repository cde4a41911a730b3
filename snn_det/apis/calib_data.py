"""Calibration images through the config's own dataloader and data_preprocessor.

Calibration needs only unlabeled images (labels are never read).  By default
they come from the training set, passed through the *test* pipeline (no
augmentation) and the model's ``data_preprocessor`` (normalisation, padding to
``pad_size_divisor``), in a seeded random order.  A config may instead give
its own ``calib_dataloader``.
"""
import copy
from typing import List

import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from torch import Tensor


def calib_dataloader_cfg(cfg: Config, batch_size: int = 8, seed: int = 0) -> ConfigDict:
    """A dataloader config yielding calibration images."""
    if cfg.get('calib_dataloader') is not None:
        return copy.deepcopy(cfg.calib_dataloader)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            source = cfg.get(key)
            break
    else:
        raise KeyError('config has no train_dataloader/val_dataloader/test_dataloader '
                       'to take calibration images from (or give calib_dataloader)')
    loader = copy.deepcopy(source)
    dataset = loader.dataset
    # unwrap RepeatDataset / ClassBalancedDataset style wrappers
    while 'dataset' in dataset and dataset.get('type', '') != 'ConcatDataset':
        dataset = dataset.dataset
    test_pipeline = None
    for key in ('test_dataloader', 'val_dataloader'):
        if cfg.get(key) is not None:
            test_pipeline = copy.deepcopy(cfg.get(key).dataset.get('pipeline'))
            break
    if test_pipeline is not None:
        dataset.pipeline = test_pipeline
    dataset.pop('filter_cfg', None)
    return ConfigDict(batch_size=batch_size, num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=True, seed=seed),
                      dataset=dataset)


@torch.no_grad()
def collect_calib_batches(model, dataloader, num_images: int) -> List[Tensor]:
    """Preprocessed image batches totalling ``num_images`` images (last batch trimmed)."""
    batches, n = [], 0
    for data in dataloader:
        inputs = model.data_preprocessor(data, False)['inputs']
        take = min(inputs.shape[0], num_images - n)
        batches.append(inputs[:take])
        n += take
        if n >= num_images:
            break
    if n == 0:
        raise RuntimeError('the calibration dataloader yielded no images')
    return batches


def build_calib_batches(cfg: Config, model, num_images: int, batch_size: int = 8,
                        seed: int = 0) -> List[Tensor]:
    """Build the calibration dataloader from ``cfg`` and collect its batches.

    Under a distributed launcher the ``num_images`` are split across the ranks:
    mmengine's ``DefaultSampler`` gives rank r every world-th image of the seeded
    order, and each rank takes ``ceil(num_images / world)`` of its own, so for a
    multiple of the world size the ranks together hold the images one process would.
    """
    from mmengine.dist import get_world_size
    world = get_world_size()
    per_rank = -(-int(num_images) // world)
    loader_cfg = calib_dataloader_cfg(cfg, min(batch_size, per_rank), seed)
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    return collect_calib_batches(model, loader, per_rank)
