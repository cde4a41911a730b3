"""The COCO / VOC configs build and run one image through the converted model.

Weights are random; the data is a tiny COCO/VOC fixture written by the test.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import snn_det  # noqa: F401
from mmdet.registry import MODELS
from snn_det.conversion import ConversionConfig
from snn_det.pipeline import convert_backbone
from snn_det.datasets import generate_detection_dataset

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CONFIGS = ['configs/coco/retinanet_r50_fpn_1x_coco_snn.py',
           'configs/coco/faster-rcnn_r50_fpn_1x_coco_snn.py',
           'configs/coco/yolov3_d53_8xb8-ms-608-273e_coco_snn.py',
           'configs/voc/yolov3_d53_8xb8-ms-416-voc0712_snn.py']


@pytest.fixture(scope='module')
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('fixture')
    generate_detection_dataset(root, seed=3, num_train=2, num_val=2, workers=1, progress=False)
    return root


@pytest.mark.parametrize('path', CONFIGS)
def test_real_config_runs_one_image_through_the_snn(path, fixture_root):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, path))
    ds = cfg.test_dataloader.dataset
    if ds.type == 'VOCDataset':
        ds.data_root = str(fixture_root / 'VOCdevkit') + '/'
        ds.ann_file = 'VOC2007/ImageSets/Main/val.txt'
        ds.data_prefix = dict(sub_data_root='VOC2007/')
    else:
        ds.data_root = str(fixture_root / 'coco') + '/'
        ds.ann_file = 'annotations/instances_val.json'
        ds.data_prefix = dict(img='val/')
    for t in ds.pipeline:
        if t.type == 'Resize':
            t.scale = (96, 96)          # keep the full-width backbones cheap on a CPU
    cfg.test_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
    cfg.test_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    model = MODELS.build(cfg.model).eval()
    assert type(model.backbone).__name__ == 'SpikingBackbone'
    data = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    batch = model.data_preprocessor(data, False)
    convert_backbone(model.backbone, [batch['inputs']], [2],
                     ConversionConfig(threshold='max', calib=[]), progress=False)
    model.backbone.set_mode('snn', 2)
    with torch.no_grad():
        feats = model.backbone(batch['inputs'])
        preds = model.predict(batch['inputs'], batch['data_samples'])
    assert all(torch.isfinite(f).all() for f in feats)
    assert len(preds) == 1 and 'pred_instances' in preds[0]
