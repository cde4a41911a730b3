"""Point a config's test dataloader and evaluator at another split of the generated data.

The generated data (``tools/make_data.py``) has three detection splits: ``train``
(training and calibration images), ``val`` (model selection, tuning, the configs'
``val_dataloader`` and, in the shipped configs, ``test_dataloader``) and ``test``
(held out: reported, never used to choose anything).  :func:`use_split` rewrites
``test_dataloader`` and ``test_evaluator`` of a loaded config to read another
split, in the COCO layout (``annotations/instances_<split>.json`` and the image
folder ``<split>/``), the VOC layout (``ImageSets/Main/<split>.txt``) or the layout of
the generated classification data, mmpretrain's ``CustomDataset`` (``meta/<split>.txt``
and the image folder ``<split>``), whose ``train`` / ``val`` / ``test`` splits play the
same roles.
"""
from __future__ import annotations

import os.path as osp
import re

SPLITS = ('val', 'test')
_COCO_ANN = re.compile(r'instances_([A-Za-z0-9]+)\.json$')
_VOC_ANN = re.compile(r'ImageSets/Main/([A-Za-z0-9]+)\.txt$')
_CLS_ANN = re.compile(r'(?:^|/)meta/([A-Za-z0-9]+)\.txt$')


def _replace(path: str, pattern: re.Pattern, split: str, what: str) -> str:
    m = pattern.search(path)
    if m is None:
        raise ValueError(f'{what} {path!r} does not name a split (instances_<split>.json, '
                         'ImageSets/Main/<split>.txt or meta/<split>.txt)')
    return path[:m.start(1)] + split + path[m.end(1):]


def _metrics(evaluator):
    return evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]


def use_split(cfg, split: str, check_files: bool = True) -> None:
    """Make ``cfg.test_dataloader`` / ``cfg.test_evaluator`` read ``split`` (in place).

    COCO layout: ``dataset.ann_file`` ``.../instances_<old>.json`` becomes
    ``.../instances_<split>.json``, the image folder ``data_prefix.img`` ``<old>/``
    becomes ``<split>/``, and every evaluator ``ann_file`` of that form follows.
    VOC layout: ``ImageSets/Main/<old>.txt`` becomes ``<split>.txt``.  Other settings
    (``indices``, pipeline, batch size) are kept.  With ``check_files`` the new
    annotation file must exist (one line naming how to make it, otherwise).
    """
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; choose one of {SPLITS}')
    loader = cfg.get('test_dataloader')
    if loader is None or 'dataset' not in loader:
        raise KeyError('config has no test_dataloader.dataset to point at a split')
    ds = loader.dataset
    if 'ann_file' not in ds:
        raise ValueError(f'test_dataloader.dataset ({ds.get("type")}) has no ann_file; '
                         'wrapped or concatenated test sets cannot be switched by split')
    ann = ds.ann_file
    cls = _CLS_ANN.search(ann)
    if cls is not None:                 # classification: meta/<split>.txt, folder <split>
        if ds.get('data_prefix') not in (cls.group(1), cls.group(1) + '/'):
            raise ValueError(f"test_dataloader.dataset.data_prefix {ds.get('data_prefix')!r} "
                             f'is not the folder of split {cls.group(1)!r}')
        ds.ann_file = _replace(ann, _CLS_ANN, split, 'test_dataloader.dataset.ann_file')
        ds.data_prefix = split
        _check_file(ds, split, check_files)
        return
    coco = _COCO_ANN.search(ann) is not None
    old = (_COCO_ANN if coco else _VOC_ANN).search(ann)
    ds.ann_file = _replace(ann, _COCO_ANN if coco else _VOC_ANN, split,
                           'test_dataloader.dataset.ann_file')
    if coco:
        prefix = ds.get('data_prefix') or {}
        if old is not None and prefix.get('img') in (old.group(1), old.group(1) + '/'):
            prefix['img'] = split + '/'
            ds.data_prefix = prefix
        elif old is not None:
            raise ValueError(f"test_dataloader.dataset.data_prefix.img {prefix.get('img')!r} "
                             f"is not the folder of split {old.group(1)!r}")
        for m in _metrics(cfg.get('test_evaluator') or []):
            if m.get('ann_file'):
                m['ann_file'] = _replace(m['ann_file'], _COCO_ANN, split,
                                         'test_evaluator.ann_file')
    _check_file(ds, split, check_files)


def _check_file(ds, split: str, check_files: bool) -> None:
    if check_files:
        path = osp.join(ds.get('data_root') or '', ds.ann_file)
        if not osp.isfile(path) and '://' not in path:
            raise FileNotFoundError(
                f'split {split!r} is missing: {path} does not exist (python tools/make_data.py '
                f'writes the {split} split; --num-test or --num-cls-test sets its size)')
