"""Tests of the deterministic generated shape datasets (tiny sizes)."""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snn_det.datasets import (SYNTH_CLASSES, SYNTH_VOC_YEAR, dataset_checksum,
                              generate_classification_dataset, generate_detection_dataset)
from snn_det.datasets.synthetic import build_synthetic_data, draw_image

NUM_TRAIN, NUM_VAL = 6, 3
VOC = Path('VOCdevkit', f'VOC{SYNTH_VOC_YEAR}')


def tree_sha256(root: Path) -> str:
    """Independent digest of every file (path + bytes) under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def make_detection(root: Path, seed: int = 0, workers: int = 1) -> dict:
    return generate_detection_dataset(root, seed=seed, num_train=NUM_TRAIN, num_val=NUM_VAL,
                                      workers=workers, progress=False)


@pytest.fixture(scope='module')
def det_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('synth')
    make_detection(root)
    return root


def load_coco(root: Path, split: str) -> dict:
    return json.loads((root / 'coco' / 'annotations' / f'instances_{split}.json').read_text())


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # pycocotools' numpy-2 copy warning
def test_coco_loads_with_pycocotools(det_root):
    coco_api = pytest.importorskip('pycocotools.coco')
    for split, count in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        coco = coco_api.COCO(str(det_root / 'coco' / 'annotations' / f'instances_{split}.json'))
        assert len(coco.getImgIds()) == count
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SYNTH_CLASSES)
        assert coco.getCatIds() == list(range(1, len(SYNTH_CLASSES) + 1))
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            with Image.open(det_root / 'coco' / split / info['file_name']) as image:
                assert image.size == (info['width'], info['height'])
                assert image.mode == 'RGB'
            assert 160 <= info['width'] <= 320 and 160 <= info['height'] <= 320
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 1 <= len(anns) <= 8
            for ann in anns:
                x, y, w, h = ann['bbox']
                assert ann['iscrowd'] == 0 and ann['area'] == w * h
                assert x >= 0 and y >= 0 and w > 0 and h > 0
                assert x + w <= info['width'] and y + h <= info['height']
                assert coco.annToMask(ann).sum() == w * h  # box-polygon segmentation


def test_voc_matches_coco(det_root):
    voc = det_root / VOC
    main = voc / 'ImageSets' / 'Main'
    ids = {split: main.joinpath(f'{split}.txt').read_text().split() for split in ('train', 'val')}
    assert main.joinpath('test.txt').read_text().split() == ids['val']
    assert main.joinpath('trainval.txt').read_text().split() == ids['train'] + ids['val']
    for split in ('train', 'val'):
        coco = load_coco(det_root, split)
        assert [img['file_name'] for img in coco['images']] == [f'{i}.jpg' for i in ids[split]]
        for img in coco['images']:
            stem = img['file_name'][:-4]
            assert ((voc / 'JPEGImages' / img['file_name']).read_bytes()
                    == (det_root / 'coco' / split / img['file_name']).read_bytes())
            tree = ET.parse(voc / 'Annotations' / f'{stem}.xml').getroot()
            assert tree.findtext('filename') == img['file_name']
            size = tree.find('size')
            assert (int(size.findtext('width')), int(size.findtext('height')),
                    int(size.findtext('depth'))) == (img['width'], img['height'], 3)
            voc_boxes = []
            for obj in tree.findall('object'):
                assert obj.findtext('difficult') == '0' and obj.findtext('truncated') == '0'
                box = obj.find('bndbox')
                xmin, ymin, xmax, ymax = (int(box.findtext(k))
                                          for k in ('xmin', 'ymin', 'xmax', 'ymax'))
                assert 1 <= xmin <= xmax <= img['width'] and 1 <= ymin <= ymax <= img['height']
                voc_boxes.append((obj.findtext('name'), [xmin - 1, ymin - 1,
                                                         xmax - xmin + 1, ymax - ymin + 1]))
            coco_boxes = [(SYNTH_CLASSES[a['category_id'] - 1], a['bbox'])
                          for a in coco['annotations'] if a['image_id'] == img['id']]
            assert voc_boxes == coco_boxes


def test_same_seed_is_byte_identical_for_any_worker_count(det_root, tmp_path):
    make_detection(tmp_path, seed=0, workers=2)
    assert tree_sha256(tmp_path) == tree_sha256(det_root)
    assert dataset_checksum(tmp_path) == dataset_checksum(det_root) == dataset_checksum(det_root)
    assert not list(tmp_path.parent.glob(f'.{tmp_path.name}.*'))  # staging cleaned up


def test_different_seed_differs(det_root, tmp_path):
    make_detection(tmp_path, seed=1)
    assert dataset_checksum(tmp_path) != dataset_checksum(det_root)
    assert (tmp_path / 'coco/train/train_000000.jpg').read_bytes() != \
        (det_root / 'coco/train/train_000000.jpg').read_bytes()


def test_objects_span_coco_area_ranges():
    areas, labels = [], set()
    for index in range(40):
        rng = np.random.default_rng([0, 0, index])
        width, height = (int(v) for v in rng.integers(160, 321, 2))
        image, anns = draw_image(rng, width, height)
        assert image.size == (width, height) and anns
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
            areas.append(ann['area'])
            labels.add(ann['category_id'])
    areas = np.array(areas)
    assert (areas < 32 ** 2).any()
    assert ((areas >= 32 ** 2) & (areas < 96 ** 2)).any()
    assert (areas >= 96 ** 2).any()
    assert labels == set(range(1, len(SYNTH_CLASSES) + 1))


def test_classification_layout_and_determinism(tmp_path):
    roots = [tmp_path / 'a', tmp_path / 'b']
    for root, workers in zip(roots, (1, 2)):
        meta = generate_classification_dataset(root, seed=0, num_train=16, num_val=8,
                                               workers=workers, progress=False)
        assert meta['splits'] == dict(train=16, val=8)
    assert dataset_checksum(roots[0]) == dataset_checksum(roots[1])
    cls = roots[0] / 'cls'
    for split, count in (('train', 16), ('val', 8)):
        lines = (cls / 'meta' / f'{split}.txt').read_text().splitlines()
        assert len(lines) == count
        for line in lines:
            path, label = line.split()
            assert path.split('/')[0] == SYNTH_CLASSES[int(label)]
            with Image.open(cls / split / path) as image:
                assert image.size == (32, 32) and image.mode == 'RGB'
        assert sorted({int(line.split()[1]) for line in lines}) == list(range(8))


def test_classification_test_split_is_held_out_and_leaves_the_others_unchanged(tmp_path):
    """The held-out test split has its own seed stream: adding it changes no train or
    val image, and its images differ from val's of the same index."""
    plain = generate_classification_dataset(tmp_path / 'a', seed=0, num_train=8, num_val=8,
                                            workers=1, progress=False)
    held = generate_classification_dataset(tmp_path / 'b', seed=0, num_train=8, num_val=8,
                                           workers=1, progress=False, num_test=8)
    assert 'test' not in plain['splits'] and held['splits'] == dict(train=8, val=8, test=8)
    a, b = tmp_path / 'a' / 'cls', tmp_path / 'b' / 'cls'
    for split in ('train', 'val'):
        assert (a / 'meta' / f'{split}.txt').read_text() == \
            (b / 'meta' / f'{split}.txt').read_text()
        for line in (a / 'meta' / f'{split}.txt').read_text().splitlines():
            path = line.split()[0]
            assert (a / split / path).read_bytes() == (b / split / path).read_bytes()
    test = (b / 'meta' / 'test.txt').read_text().splitlines()
    assert [ln.split()[1] for ln in test] == [str(i % 8) for i in range(8)]
    path = test[0].split()[0]
    assert (b / 'test' / path).read_bytes() != (b / 'val' / path).read_bytes()


def test_build_skips_when_up_to_date(tmp_path):
    kwargs = dict(num_train=3, num_val=2, num_test=2, num_cls_train=8, num_cls_val=8,
                  workers=1, progress=False)
    meta, built = build_synthetic_data(tmp_path, **kwargs)
    assert built and meta['checksum'] == dataset_checksum(tmp_path)
    assert json.loads((tmp_path / 'meta.json').read_text()) == meta
    assert build_synthetic_data(tmp_path, **kwargs) == (meta, False)
    assert build_synthetic_data(tmp_path, **kwargs, force=True) == (meta, True)
    (tmp_path / 'coco' / 'val' / 'val_000000.jpg').write_bytes(b'corrupt')
    assert build_synthetic_data(tmp_path, **kwargs) == (meta, True)
    assert build_synthetic_data(tmp_path, **dict(kwargs, num_val=1))[1]
