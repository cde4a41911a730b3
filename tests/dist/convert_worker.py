"""Run by tests/test_distributed.py under torchrun: convert the shipped RetinaNet with
``--launcher pytorch`` semantics (gloo on the CPU) and save this rank's converted state.

    python -m torch.distributed.run --nproc_per_node N convert_worker.py DATA_ROOT OUT_DIR
"""
import os.path as osp
import sys

import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)
torch.set_num_threads(1)

from mmengine.config import Config  # noqa: E402
from mmengine.dist import get_rank, get_world_size  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import snn_det  # noqa: F401,E402
from snn_det.apis import convert_model, wrap_backbone_cfg  # noqa: E402
from snn_det.apis.convert import unwrap  # noqa: E402
from snn_det.apis.dist import finish_launcher, prepare_launcher  # noqa: E402
from snn_det.conversion import ConversionConfig  # noqa: E402


def main(data_root: str, out_dir: str) -> None:
    cfg = Config.fromfile(osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data_root
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    # one size for every image: a batch is padded to its largest image, so batches of 2
    # and of 4 would otherwise see different borders
    for t in cfg.test_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['keep_ratio'] = False
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = data_root + 'annotations/instances_val.json'
    cfg.load_from = osp.join(ROOT, 'checkpoints/retinanet_r18n_fpn_12e_synth.pth')
    cfg.work_dir = osp.join(out_dir, 'logs')
    cfg.log_level = 'WARNING'
    prepare_launcher(cfg, 'pytorch')
    wrap_backbone_cfg(cfg, 4, chunk_size=2)
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    conv = ConversionConfig(threshold='max', channel_wise=True,
                            calib=['bias', 'potential', 'weights', 'fc'],
                            weight_iters=6, weight_lr=1e-4, fc_iters=6, fc_lr=1e-3)
    # one batch per rank: an optimisation step sees the same images, all 4, either way
    # (one process: one batch of 4; two ranks: 2 + 2 with the gradients averaged)
    timings = convert_model(runner.model, cfg, [4], conv, calib_images=4,
                            calib_batch_size=4 // get_world_size(), chunk_size=2,
                            progress=False)
    bb = unwrap(runner.model).backbone
    state = {k: v.detach().cpu() for k, v in bb.snn.state_dict().items()}
    torch.save(dict(state=state, world=get_world_size(), images=timings['calib_images']),
               osp.join(out_dir, f'rank{get_rank()}.pt'))
    finish_launcher()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
