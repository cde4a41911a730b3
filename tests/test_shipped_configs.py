"""Every shipped config parses, and every model a config or benchmark names is shipped.

A benchmark that names a checkpoint nobody committed fails after minutes of work;
this catches it in a second.  Checkpoints must load with ``weights_only=True``.
"""
import glob
import gzip
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
SHIPPED = sorted(glob.glob(osp.join(ROOT, 'configs', d, '*.py'))
                 for d in ('synth', 'two_stage', 'benchmarks', 'cls'))
SHIPPED = [p for group in SHIPPED for p in group if not osp.basename(p).startswith('_')]


def _rel(p):
    return osp.relpath(p, ROOT)


def _models_of(bench) -> list:
    """(config, checkpoint) pairs a benchmark config refers to."""
    pairs = [(d['config'], d['checkpoint']) for d in bench['detectors']]
    for method in bench['methods']:
        for per_det in (method.get('sources') or {}).values():
            per_T = [per_det] if 'config' in per_det else list(per_det.values())
            pairs += [(s['config'], s['checkpoint']) for s in per_T]
    return sorted(set(pairs))


@pytest.mark.parametrize('path', SHIPPED, ids=_rel)
def test_config_parses_and_names_existing_files(path):
    cfg = Config.fromfile(path)
    if 'benchmark' in cfg:
        pairs = _models_of(cfg.benchmark)
        assert pairs
        for config, checkpoint in pairs:
            assert osp.isfile(osp.join(ROOT, config)), f'{_rel(path)}: missing {config}'
            assert osp.isfile(osp.join(ROOT, checkpoint)), f'{_rel(path)}: missing {checkpoint}'
    elif cfg.get('load_from'):
        assert osp.isfile(osp.join(ROOT, cfg.load_from)), f'{_rel(path)}: missing {cfg.load_from}'


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(ROOT, 'checkpoints', '*.pth*'))),
                         ids=_rel)
def test_shipped_checkpoint_is_weights_only(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        ckpt = torch.load(f, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert all(isinstance(v, torch.Tensor) for v in ckpt['state_dict'].values())
    assert osp.getsize(path) < 10 * 1024 * 1024, 'over the repository limit of 10 MiB'
