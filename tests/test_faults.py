"""Faults and bad inputs: each gives one line that names the cause, and nothing
half-written is left on disk."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import load_tool, tiny_spiking

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CFG = osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py')
CKPT = osp.join(ROOT, 'checkpoints/retinanet_r18n_fpn_12e_synth.pth')

_tool = load_tool


@pytest.fixture()
def data(tmp_path):
    from snn_det.datasets import generate_detection_dataset
    generate_detection_dataset(tmp_path / 'synth', seed=2, num_train=4, num_val=2, workers=1,
                               progress=False)
    root = str(tmp_path / 'synth' / 'coco') + '/'
    opts = ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_evaluator.ann_file={root}annotations/instances_val.json']
    return tmp_path, tmp_path / 'synth' / 'coco', opts


def _convert(args, capsys):
    """tools/convert.py in this process; returns its one-line error (SystemExit)."""
    with pytest.raises(SystemExit) as e:
        _tool('convert').main(args)
    msg = str(e.value.code)
    assert '\n' not in msg.strip(), msg
    return msg


def _base(work, opts, *extra):
    # a fresh visualizer name: mmengine keeps one visualizer per name in the process
    name = f'visualizer.name=faults_{next(_RUNS)}'
    return [CFG, CKPT, '--T', '4', '--threshold', 'max', '--calib', 'lcp', '--calib-images',
            '2', '--calib-batch-size', '2', '--work-dir', str(work), *extra] + opts + [name]


_RUNS = iter(range(10 ** 6))


def test_an_unreadable_image_names_the_file(data, capsys):
    tmp, coco, opts = data
    for img in (coco / 'train').glob('*.jpg'):
        img.write_bytes(img.read_bytes()[:64])          # truncated to part of its header
    work = tmp / 'out'
    msg = _convert(_base(work, opts), capsys)
    assert 'failed to load image' in msg and str(coco / 'train') in msg, msg
    assert not work.exists()


def test_nan_inputs_are_refused(data, capsys):
    tmp, _, opts = data
    work = tmp / 'out'
    msg = _convert(_base(work, opts[:1] + ['model.data_preprocessor.std=[0,0,0]'] + opts[1:]),
                   capsys)
    assert 'NaN/Inf' in msg and 'calibration batch 0' in msg, msg
    assert not work.exists()


def test_all_zero_images_are_refused(data, capsys):
    tmp, coco, opts = data
    for img in (coco / 'train').glob('*.jpg'):
        w, h = Image.open(img).size
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(img)
    work = tmp / 'out'
    msg = _convert(_base(work, opts), capsys)
    assert 'every image is constant' in msg, msg
    assert not work.exists()


def test_an_empty_calibration_set_is_refused(data, capsys):
    tmp, coco, opts = data
    ann = coco / 'annotations' / 'instances_train.json'
    d = json.load(open(ann))
    d['images'], d['annotations'] = [], []
    json.dump(d, open(ann, 'w'))
    work = tmp / 'out'
    msg = _convert(_base(work, opts), capsys)
    assert 'calibration set is empty' in msg, msg
    msg = _convert(_base(work, opts, '--calib-images', '0'), capsys)
    assert '--calib-images must be at least 1' in msg, msg
    assert not work.exists()


def test_a_memory_budget_too_small_or_unreadable_is_refused(data, capsys):
    """--memory-budget below what the process already holds plus one time step: one line
    naming the budget that fits, before calibrating; an unreadable size names the option."""
    tmp, _, opts = data
    work = tmp / 'out'
    msg = _convert(_base(work, opts, '--memory-budget', '64M'), capsys)
    assert msg.startswith('error: calibration at T=4 needs at least'), msg
    assert 'the memory budget is 64.0 MiB: use --memory-budget' in msg, msg
    assert not work.exists()
    msg = _convert(_base(work, opts, '--memory-budget', 'lots'), capsys)
    assert msg.startswith("error: --memory-budget: cannot read 'lots' as a size"), msg
    assert not work.exists()


def test_an_interrupted_conversion_leaves_nothing(data, capsys, monkeypatch):
    """KeyboardInterrupt during calibration: no checkpoint, config or log folder is left;
    a work dir that existed before keeps what it held."""
    tmp, _, opts = data
    tool = _tool('convert')

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(tool, 'convert_model', interrupted)
    for existed in (False, True):
        work = tmp / f'out{int(existed)}'
        if existed:
            work.mkdir()
            (work / 'mine.txt').write_text('keep')
        with pytest.raises(SystemExit) as e:
            tool.main(_base(work, opts))
        assert 'interrupted: nothing was written' in str(e.value.code)
        if existed:
            assert sorted(p.name for p in work.iterdir()) == ['mine.txt']
        else:
            assert not work.exists()


def test_a_simulation_that_cannot_fit_is_refused_with_the_chunk_size_that_fits(monkeypatch):
    """T so large that one chunk of all T steps would not fit: refused before the first
    step, naming the chunk size that fits; with that chunk size the run goes through."""
    import snn_det.utils.memory as memory
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import convert_backbone
    from snn_det.conversion.errors import InsufficientMemoryError
    bb = tiny_spiking('resnet18', T=8)
    x = torch.rand(2, 3, 32, 32)
    convert_backbone(bb, [x], [8], ConversionConfig(threshold='max', calib=[]), progress=False)
    net = bb.spiking_net(8)
    per_step = memory.simulation_bytes(net.site_elements(x), 1)
    monkeypatch.setattr(memory, 'available_bytes', lambda device=None: 10 * per_step)
    with pytest.raises(InsufficientMemoryError, match=r'--chunk-size 10\b') as e:
        net.simulate(x, 100000)
    assert 'T=100000' in str(e.value) and '2 image(s) of 32x32' in str(e.value)
    assert len(net.simulate(x, 20, chunk_size=10)) == 4


def test_a_converted_checkpoint_of_another_T_or_backbone_is_refused(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    from snn_det.apis import save_converted, wrap_backbone_cfg
    from snn_det.conversion import ConversionConfig
    from snn_det.pipeline import convert_backbone
    from snn_det.conversion.errors import ConversionStateError
    init_default_scope('mmdet')
    cfg = Config.fromfile(CFG)
    wrap_backbone_cfg(cfg, 4, dict(threshold='max', calib=[]))
    model = MODELS.build(cfg.model).eval()
    convert_backbone(model.backbone, [torch.rand(1, 3, 64, 64)], [4],
                     ConversionConfig(threshold='max', calib=[]), progress=False)
    ckpt, cfg_path = save_converted(model, cfg, str(tmp_path), 'det', {})
    other_T = Config.fromfile(cfg_path)
    other_T.model.backbone.converted_T = [8]
    with pytest.raises(ConversionStateError, match=r'for T=\[8\].*it has T4'):
        load_checkpoint(MODELS.build(other_T.model), ckpt, map_location='cpu',
                        logger='silent')
    other_bb = Config.fromfile(cfg_path)
    other_bb.model.backbone.backbone.base_channels = 32
    other_bb.model.neck.in_channels = [64, 128, 256]
    with pytest.raises(ConversionStateError, match='converted from another backbone'):
        load_checkpoint(MODELS.build(other_bb.model), ckpt, map_location='cpu',
                        logger='silent')


def test_a_calibration_whose_cache_files_cannot_fit_on_disk_is_refused(data, capsys,
                                                                       monkeypatch):
    """With no cache RAM (--calib-cache-budget 0) every cached spike train goes to files;
    when their least size is over the free disk under the cache's folder, one line names
    the folder and the fix before calibrating, and nothing is written."""
    from snn_det.runtime import memory
    tmp, _, opts = data
    seen = []

    def tiny_disk(where):
        seen.append(where)
        return 1024
    monkeypatch.setattr(memory, 'free_disk_bytes', tiny_disk)
    work = tmp / 'out'
    msg = _convert(_base(work, opts, '--calib-cache-budget', '0',
                         '--calib-cache-dir', str(tmp / 'spill')), capsys)
    assert msg.startswith('error: calibration at T=4 writes at least'), msg
    assert f'to files under {tmp / "spill"}' in msg and '1.0 KiB is free there' in msg, msg
    assert '--calib-cache-dir on a larger disk' in msg, msg
    assert seen and not work.exists() and not (tmp / 'spill').exists()


def test_a_metric_left_on_another_annotation_file_is_refused(tmp_path):
    """test_dataloader moved to other images while test_evaluator.ann_file stayed: the
    metric would score the predictions against other boxes; one line names the file."""
    from mmdet.datasets import CocoDataset
    from pycocotools.coco import COCO

    from snn_det.datasets import SYNTH_CLASSES, generate_detection_dataset
    from snn_det.engine.evaluators import check_ground_truth
    for seed in (1, 2):
        generate_detection_dataset(tmp_path / f's{seed}', seed=seed, num_train=1, num_val=3,
                                   workers=1, progress=False)
    ann = 'annotations/instances_val.json'
    ds = CocoDataset(data_root=str(tmp_path / 's1' / 'coco'), ann_file=ann,
                     metainfo=dict(classes=SYNTH_CLASSES), data_prefix=dict(img='val/'),
                     test_mode=True, pipeline=[])
    assert sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds))) > 0
    check_ground_truth(COCO(str(tmp_path / 's1' / 'coco' / ann)), ds)     # its own: fine
    with pytest.raises(ValueError, match="does not hold the test images' boxes") as e:
        check_ground_truth(COCO(str(tmp_path / 's2' / 'coco' / ann)), ds)
    assert 'point test_evaluator.ann_file at' in str(e.value) and '\n' not in str(e.value)
