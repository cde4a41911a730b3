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


def check_calib_batch(x: Tensor, where: str = 'calibration batch', shapes=None) -> None:
    """Refuse inputs calibration cannot use, naming the cause: NaN / Inf values, or
    images without any variation (e.g. all zero), from which every threshold would be
    set by one constant activation per channel.  ``shapes``: each image's (h, w)
    before batch padding (the padding itself is constant)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f'{where} holds {bad} NaN/Inf values; check the images and the '
                         "data_preprocessor's mean/std")
    constant = []
    for i in range(x.shape[0]):
        h, w = shapes[i] if shapes is not None else x.shape[-2:]
        img = x[i, :, :h, :w].reshape(x.shape[1], -1)
        constant.append(bool((img.amax(1) == img.amin(1)).all()))
    if all(constant):
        raise ValueError(f'{where}: every image is constant (e.g. all zero); calibration '
                         'needs real images (check the dataset path and --calib-images)')


@torch.no_grad()
def collect_calib_batches(model, dataloader, num_images: int, into=None) -> List[Tensor]:
    """Preprocessed image batches totalling ``num_images`` images (last batch trimmed),
    appended to ``into`` (e.g. a :class:`~snn_det.calibration.frontier.CachedImages`,
    which keeps them within a memory budget) or to a new list."""
    if int(num_images) < 1:
        raise ValueError(f'--calib-images must be at least 1, got {num_images}')
    batches, n = (into if into is not None else []), 0
    for data in dataloader:
        out = model.data_preprocessor(data, False)
        inputs = out['inputs']
        take = min(inputs.shape[0], num_images - n)
        samples = out.get('data_samples') or []
        shapes = [s.metainfo.get('img_shape', inputs.shape[-2:]) for s in samples[:take]] \
            if len(samples) >= take else None
        check_calib_batch(inputs[:take], f'calibration batch {len(batches)}', shapes)
        batches.append(inputs[:take])
        n += take
        if n >= num_images:
            break
    if n == 0:
        raise RuntimeError('the calibration dataloader yielded no images: the calibration '
                           'set is empty (check the dataset path / ann_file)')
    return batches


def build_calib_batches(cfg: Config, model, num_images: int, batch_size: int = 8,
                        seed: int = 0, into=None) -> List[Tensor]:
    """Build the calibration dataloader from ``cfg`` and collect its batches.

    Under a distributed launcher the ``num_images`` are split across the ranks:
    mmengine's ``DefaultSampler`` gives rank r every world-th image of the seeded
    order, and each rank takes ``ceil(num_images / world)`` of its own, so for a
    multiple of the world size the ranks together hold the images one process would.
    """
    from mmengine.dist import get_world_size
    if int(num_images) < 1:
        raise ValueError(f'--calib-images must be at least 1, got {num_images}')
    world = get_world_size()
    per_rank = -(-int(num_images) // world)
    loader_cfg = calib_dataloader_cfg(cfg, min(batch_size, per_rank), seed)
    try:
        loader = Runner.build_dataloader(loader_cfg, seed=seed)
    except ValueError as e:     # mmengine cannot serialise a dataset of no images
        if 'need at least one array' not in str(e):
            raise
        ds = loader_cfg.dataset
        where = ' '.join(str(ds.get(k)) for k in ('data_root', 'ann_file') if ds.get(k))
        raise RuntimeError(f'the calibration set is empty: {where or ds.get("type")} holds no '
                           'images') from None
    return collect_calib_batches(model, loader, per_rank, into)
