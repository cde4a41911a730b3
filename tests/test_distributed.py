"""Distributed conversion and evaluation with two gloo processes on the CPU
(``--launcher pytorch`` under torchrun, through mmengine's own runner and dist utilities)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CFG = osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py')
CKPT = osp.join(ROOT, 'checkpoints/retinanet_r18n_fpn_12e_synth.pth')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun(nproc, args, cwd=ROOT):
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
           '--master_addr=127.0.0.1', f'--master_port={_free_port()}'] + args
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    # torchrun's summary ends stderr; what a rank printed before it died comes first
    died = [ln for ln in r.stderr.splitlines()
            if any(w in ln for w in ('terminate', 'Error', 'error:', 'Abort', 'what()'))]
    assert r.returncode == 0, (r.stdout[-2000:], died[-20:], r.stderr[-6000:])
    return r


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from snn_det.datasets import generate_detection_dataset
    root = tmp_path_factory.mktemp('dist')
    generate_detection_dataset(root / 'synth', seed=5, num_train=8, num_val=8, workers=1,
                               progress=False)
    return root, str(root / 'synth' / 'coco') + '/'


def test_two_ranks_calibrate_one_network_equal_to_one_process(data):
    """LCP + ACP (weights) + FC (BPTT) on 4 images split over 2 ranks: both ranks end with
    the same converted state bit for bit, and it matches one process calibrating on the
    same 4 images within float tolerance (the reductions sum in another order)."""
    root, data_root = data
    worker = osp.join(ROOT, 'tests', 'dist', 'convert_worker.py')
    two, one = root / 'two', root / 'one'
    two.mkdir()
    one.mkdir()
    _torchrun(2, [worker, data_root, str(two)])
    _torchrun(1, [worker, data_root, str(one)])
    r0, r1 = (torch.load(two / f'rank{r}.pt', weights_only=True) for r in (0, 1))
    ref = torch.load(one / 'rank0.pt', weights_only=True)
    assert r0['world'] == 2 and ref['world'] == 1
    assert r0['images'] == r1['images'] == 2 and ref['images'] == 4     # split, not copied
    assert r0['state'].keys() == r1['state'].keys() == ref['state'].keys()
    for k in r0['state']:
        assert torch.equal(r0['state'][k], r1['state'][k]), k
    moved = 0
    for k, v in ref['state'].items():
        a, b = torch.broadcast_tensors(r0['state'][k], v)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    # calibration did change the network (the comparison above is not of two copies of
    # the uncalibrated one): biases and initial potentials moved off their start values
    v0 = [v for k, v in ref['state'].items() if k.endswith('.v0')]
    thr = [v for k, v in ref['state'].items() if k.endswith('.threshold')]
    for a, t in zip(v0, thr):
        moved += int(not torch.allclose(a, t / 2))
    assert moved >= len(v0) // 2


def test_two_process_evaluation_gives_the_same_map_as_one(data, tmp_path):
    """tools/test.py under torchrun with 2 gloo processes: the same COCO metrics as one
    process (mmengine's sampler splits the images, its evaluator collects them)."""
    root, data_root = data
    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={data_root}',
            f'test_evaluator.ann_file={data_root}annotations/instances_val.json',
            f'train_dataloader.dataset.data_root={data_root}',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            # one image per batch and one size for all: a batch is padded to its largest
            # image, and the ranks' batches pair other images than one process's would
            'test_dataloader.batch_size=1', 'test_dataloader.dataset.pipeline.1.keep_ratio=False']
    common = ['tools/test.py', CFG, CKPT, '--T', '4', '--threshold', 'max', '--calib', 'none',
              '--calib-images', '4', '--launcher', 'pytorch']
    res = {}
    for n in (1, 2):
        work = tmp_path / f'n{n}'
        _torchrun(n, common + ['--work-dir', str(work)] + opts)
        res[n] = json.load(open(work / 'snn_test_results.json'))['results']
    keys = ('AP', 'AP50', 'AP75')
    assert [[r[k] for k in keys] for r in res[1]] == [[r[k] for k in keys] for r in res[2]]
    assert res[1][0]['AP'] > 0.1          # the ANN row: real detections, not zeros


def test_two_process_benchmark_writes_the_rows_of_one(data, tmp_path):
    """tools/benchmark.py --launcher pytorch with 2 gloo processes: rank 0 writes the same
    rows (ANN and SNN metrics) as one process."""
    root, data_root = data
    opts = {'train_dataloader.dataset.data_root': data_root,
            'test_dataloader.dataset.data_root': data_root,
            'test_evaluator.ann_file': data_root + 'annotations/instances_val.json',
            'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
            'test_dataloader.batch_size': 1,
            'test_dataloader.dataset.pipeline.1.keep_ratio': False}
    cfg = tmp_path / 'dist_bench.py'
    cfg.write_text(
        f"benchmark = dict(name='dist_bench', seed=0, T=[4], calib_images=4,\n"
        f"    calib_batch_size=2, val_images=8, split='val',\n"
        f"    detectors=[dict(name='RetinaNet', config={CFG!r}, checkpoint={CKPT!r},\n"
        f"                    cfg_options={opts!r})],\n"
        f"    methods=[dict(name='Baseline', conversion=dict(threshold='max'))])\n")
    rows = {}
    for n in (1, 2):
        out = tmp_path / f'out{n}'
        _torchrun(n, ['tools/benchmark.py', str(cfg), '--out-root', str(out), '--no-data',
                      '--launcher', 'pytorch'])
        res = json.load(open(out / 'dist_bench' / 'results.json'))
        rows[n] = [(r['method'], r['T'], r['AP'], r['AP50']) for r in res['results']]
    assert rows[1] == rows[2] and len(rows[1]) == 2 and rows[1][0][2] > 0.1


def test_finish_launcher_destroys_the_group_and_is_a_no_op_outside_one(tmp_path):
    """The tools end a distributed run with finish_launcher: a barrier, then the default
    group destroyed (none left for the interpreter's exit to tear down); without a group
    it does nothing."""
    import torch.distributed as dist

    from snn_det.apis.dist import finish_launcher
    finish_launcher()                                   # no group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0,
                            world_size=1)
    assert dist.is_initialized()
    finish_launcher()
    assert not dist.is_initialized()
    finish_launcher()
