"""Export a converted spiking backbone to a NIR graph (Neuromorphic Intermediate Representation).

    python tools/export_nir.py CONFIG CHECKPOINT --T 32 [--out model.nir]
        [--input image|current] [--check sinabs norse] [--work-dir DIR]
        [--cfg-options k=v ...]

CONFIG/CHECKPOINT are a converted pair written by tools/convert.py (``<name>_snn.py``,
``<name>_snn.pth``; convert with ``--shift bias``: NIR has no initial potential).
Writes ``--out`` (default ``<work-dir>/<name>_T<T>.nir``) atomically; with ``--check``
the file is read back with ``nir.read``, simulated by the named runtimes on one
calibration image and compared with snn-det's own simulation, site by site
(``<work-dir>/nir_check.json``).  Anything NIR cannot express exactly is refused
with one line naming the site and the feature, and nothing is written.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config, DictAction  # noqa: E402

import snn_det  # noqa: F401,E402
from snn_det.export import INPUTS  # noqa: E402
from snn_det.export.check import RUNTIMES  # noqa: E402
from snn_det.utils.checkpoint import load_checkpoint_file  # noqa: E402
from snn_det.utils.outputs import OutputGuard  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export a converted spiking backbone to NIR')
    p.add_argument('config', help='converted config (<name>_snn.py from tools/convert.py)')
    p.add_argument('checkpoint', help='converted checkpoint (<name>_snn.pth)')
    p.add_argument('--T', type=int, default=32, help='which converted T to export')
    p.add_argument('--out', help='the .nir file (default: <work-dir>/<name>_T<T>.nir)')
    p.add_argument('--input', choices=INPUTS, default='image',
                   help="graph input: the image (stem convolution in the graph), or the "
                        "stem's current maxpool(conv1(image)) (exact for a max-pooled stem)")
    p.add_argument('--check', nargs='*', choices=RUNTIMES, default=None,
                   help='simulate the file in these runtimes (default with no names: all) '
                        'and compare spikes with snn-det')
    p.add_argument('--seed', type=int, default=0, help='which calibration image checks it')
    p.add_argument('--eval-images', type=int, default=0,
                   help='with --check, on a classifier: top-1 of each runtime on this many '
                        'test images, beside the ANN\'s and snn-det\'s')
    p.add_argument('--work-dir', help='where to write (default work_dirs/<name>_nir)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings in the config, key=value')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', f'{name}_nir')
    out = args.out or osp.join(work_dir, f'{name}_T{args.T}.nir')
    check = None if args.check is None else (list(args.check) or list(RUNTIMES))
    try:
        if not osp.isfile(args.config):
            raise FileNotFoundError(f"config '{args.config}' does not exist")
        if args.T < 1:
            raise ValueError(f'--T must be a positive number of time steps, got {args.T}')
        if args.eval_images < 0 or (args.eval_images and check is None):
            raise ValueError('--eval-images needs --check and a number of images >= 0')
        if not out.endswith('.nir'):
            raise ValueError(f"--out must name a .nir file, got '{out}'")
        load_checkpoint_file(args.checkpoint)
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        for pkg in {'nir', 'nirtorch'} | {rt.split('_')[0] for rt in check or []}:
            try:
                __import__(pkg)
            except ImportError:
                raise ImportError(f'{pkg} is not installed: pip install -r '
                                  'requirements/tests.txt') from None
    except Exception as e:     # one clear line, nothing written
        sys.exit(f'error: {e}')
    from snn_det.export.api import export_converted, format_check
    guard = OutputGuard(work_dir)
    try:
        with guard:
            guard.remove_on_failure(osp.join(work_dir, 'logs'))
            summary = export_converted(cfg, args.checkpoint, args.T, out, work_dir,
                                       args.input, check or (), args.seed,
                                       eval_images=args.eval_images)
    except KeyboardInterrupt:
        sys.exit('interrupted: nothing was written')
    except (ValueError, KeyError, TypeError, RuntimeError, OSError, ImportError) as e:
        if os.environ.get('SNN_DET_DEBUG'):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f'error: {msg} (nothing was written)')
    print(f'wrote {summary["file"]}: {summary["nodes"]} NIR nodes, {summary["sites"]} IF sites, '
          f'T={args.T}, input={args.input} (image {summary["image_shape"]}); IF nodes reset by '
          'subtraction (metadata reset=subtract): a reader following NIR\'s IF equations '
          'resets to v_reset = 0 instead')
    if check:
        print(format_check(summary))
        print(f'wrote {summary["check_file"]}')
    return summary


if __name__ == '__main__':
    main()
