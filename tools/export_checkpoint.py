"""Strip an mmengine runner checkpoint to weights plus plain metadata.

    python tools/export_checkpoint.py RUNNER_CKPT OUT.pth [--metric coco/bbox_mAP=0.61 ...]

The result holds only tensors and plain Python values, so it loads with
``torch.load(OUT, weights_only=True)`` (runner checkpoints carry numpy objects
in their message hub).  Optimizer state is dropped.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from snn_det.utils.checkpoint import (load_checkpoint_file, save_checkpoint_atomic,  # noqa
                                      to_plain)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint')
    p.add_argument('out')
    p.add_argument('--metric', nargs='*', default=[], help='key=value pairs stored in meta')
    args = p.parse_args(argv)
    ckpt = load_checkpoint_file(args.checkpoint)
    state = ckpt.get('state_dict', ckpt)
    meta = to_plain(dict(ckpt.get('meta', {})))
    keep = {k: meta[k] for k in ('dataset_meta', 'epoch', 'iter', 'mmdet_version', 'seed',
                                 'experiment_name') if k in meta}
    keep['metrics'] = {kv.split('=')[0]: float(kv.split('=')[1]) for kv in args.metric}
    keep['source'] = osp.basename(args.checkpoint)
    save_checkpoint_atomic({'meta': keep, 'state_dict': {k: v.detach().cpu().clone()
                                                         for k, v in state.items()}}, args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
