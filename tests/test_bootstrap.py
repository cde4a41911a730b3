"""The evaluation protocol: bootstrap intervals of COCO AP, verdicts, the test split."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os.path as osp

import numpy as np
import pytest

from snn_det.evaluation.bootstrap import (ImageEvaluation, bootstrap_intervals, evaluate_coco,
                                          percentile_interval, resample_counts)
from snn_det.evaluation.verdict import (MET, MISSED, WITHIN_NOISE, compare, intervals_overlap,
                                        target_verdict)

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')  # pycocotools, numpy 2
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
MMDET_MAX_DETS = (100, 300, 1000)      # what mmdet's CocoMetric sets


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def _coco(dataset: dict):
    from pycocotools.coco import COCO
    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    _quiet(coco.createIndex)
    return coco


def make_gt(num_images: int = 40, num_cats: int = 3, seed: int = 0) -> dict:
    """Images with 0-5 boxes of all COCO sizes; a few crowd boxes (ignored by COCO)."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, num_images + 1):
        images.append(dict(id=i, width=400, height=400, file_name=f'{i}.jpg'))
        for _ in range(rng.integers(0, 6)):
            w, h = rng.uniform(8, 150, 2)
            x, y = rng.uniform(0, 400 - w), rng.uniform(0, 400 - h)
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=int(rng.integers(1, 1 + num_cats)),
                             bbox=[x, y, w, h], area=w * h, iscrowd=int(rng.random() < 0.05)))
    return dict(images=images, annotations=anns,
                categories=[dict(id=c, name=f'c{c}') for c in range(1, num_cats + 1)])


def make_dets(gt: dict, seed: int = 1, noise: float = 0.05) -> list:
    """Jittered copies of most boxes (sometimes the wrong class), plus false positives."""
    rng = np.random.default_rng(seed)
    dets = []
    for ann in gt['annotations']:
        if rng.random() < 0.8:
            x, y, w, h = ann['bbox']
            jit = rng.normal(0, noise, 4) * [w, h, w, h]
            cat = ann['category_id'] if rng.random() < 0.85 else int(rng.integers(1, 4))
            dets.append(dict(image_id=ann['image_id'], category_id=cat, score=float(rng.random()),
                             bbox=[x + jit[0], y + jit[1], max(1.0, w + jit[2]),
                                   max(1.0, h + jit[3])]))
    for img in gt['images']:
        for _ in range(rng.integers(0, 4)):
            w, h = rng.uniform(8, 120, 2)
            dets.append(dict(image_id=img['id'], category_id=int(rng.integers(1, 4)),
                             score=float(rng.random() * 0.7),
                             bbox=[float(rng.uniform(0, 400 - w)), float(rng.uniform(0, 400 - h)),
                                   float(w), float(h)]))
    return dets


def pycocotools_stats(gt: dict, dets: list, max_dets=None) -> np.ndarray:
    from pycocotools.cocoeval import COCOeval
    coco_gt = _coco(gt)
    ev = COCOeval(coco_gt, _quiet(coco_gt.loadRes, copy.deepcopy(dets)), 'bbox')
    if max_dets:
        ev.params.maxDets = list(max_dets)
    _quiet(ev.evaluate)
    _quiet(ev.accumulate)
    _quiet(ev.summarize)
    return ev.stats


@pytest.fixture(scope='module')
def data():
    gt = make_gt()
    return gt, make_dets(gt), make_dets(gt, seed=2, noise=0.15)


@pytest.mark.parametrize('max_dets', [None, MMDET_MAX_DETS])
def test_identity_resample_reproduces_pycocotools(data, max_dets):
    gt, dets, _ = data
    ev = evaluate_coco(_coco(gt), dets, max_dets=max_dets)
    stats = pycocotools_stats(gt, dets, max_dets)
    ap, ap50 = ev.ap()[0]
    assert 0.2 < stats[0] < 0.9                       # a meaningful, non-trivial AP
    assert abs(ap - stats[0]) <= 1e-9 and abs(ap50 - stats[1]) <= 1e-9
    assert (ap, ap50) == (stats[0], stats[1])         # the same operations: bit-exact
    # explicit all-ones counts are the same thing
    assert ev.ap(np.ones((1, ev.num_images), dtype=int))[0].tolist() == [ap, ap50]


def _duplicated(gt: dict, dets: list, counts: np.ndarray) -> tuple:
    """The resampled image multiset as a real dataset: image i drawn c times becomes c
    images (new ids, copies next to each other, in the original order)."""
    images, anns, new_dets = [], [], []
    by_img = {}
    for a in gt['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    det_by_img = {}
    for d in dets:
        det_by_img.setdefault(d['image_id'], []).append(d)
    for img, c in zip(gt['images'], counts):
        for _ in range(c):
            new = len(images) + 1
            images.append(dict(img, id=new))
            for a in by_img.get(img['id'], []):
                anns.append(dict(a, id=len(anns) + 1, image_id=new))
            new_dets += [dict(d, image_id=new) for d in det_by_img.get(img['id'], [])]
    return dict(gt, images=images, annotations=anns), new_dets


def test_a_resample_equals_pycocotools_on_the_duplicated_images(data):
    """Duplicated images count twice: a resample's AP is pycocotools' AP of a dataset
    holding each drawn image as often as it was drawn."""
    gt, dets, _ = data
    ev = evaluate_coco(_coco(gt), dets)
    counts = resample_counts(ev.num_images, 3, seed=5)
    assert (counts == 0).any() and (counts > 1).any()
    got = ev.ap(counts)
    for b in range(3):
        dgt, ddets = _duplicated(gt, dets, counts[b])
        stats = pycocotools_stats(dgt, ddets)
        np.testing.assert_allclose(got[b], stats[:2], rtol=0, atol=1e-12)


def test_resamples_are_seeded_and_draw_every_image_count():
    a, b = resample_counts(50, 20, seed=3), resample_counts(50, 20, seed=3)
    assert (a == b).all() and (a.sum(axis=1) == 50).all()
    assert not (a == resample_counts(50, 20, seed=4)).all()
    with pytest.raises(ValueError, match='at least one image'):
        resample_counts(0, 10)


def test_intervals_contain_the_point_and_are_deterministic(data):
    gt, dets, worse = data
    coco = _coco(gt)
    evs = {'ann': evaluate_coco(coco, dets), 'snn': evaluate_coco(coco, worse)}
    out = bootstrap_intervals(evs, reference='ann', num_resamples=200, seed=0)
    again = bootstrap_intervals(evs, reference='ann', num_resamples=200, seed=0)
    assert out == again
    for name, r in out.items():
        for key in ('AP', 'AP50'):
            lo, hi = r[f'{key}_ci']
            assert lo < r[key] < hi and hi - lo < 0.5
    assert 'ratio' not in out['ann']
    lo, hi = out['snn']['ratio_ci']
    assert out['snn']['ratio'] == pytest.approx(out['snn']['AP'] / out['ann']['AP'])
    assert lo < out['snn']['ratio'] < hi < 1.0      # the noisier boxes score lower
    other = bootstrap_intervals(evs, reference='ann', num_resamples=200, seed=1)
    assert other['snn']['AP_ci'] != out['snn']['AP_ci']


def test_paired_ratio_of_a_model_with_itself_is_exactly_one(data):
    gt, dets, _ = data
    coco = _coco(gt)
    evs = {'a': evaluate_coco(coco, dets), 'b': evaluate_coco(coco, dets)}
    out = bootstrap_intervals(evs, reference='a', num_resamples=100, seed=0)
    assert out['b']['ratio'] == 1.0 and out['b']['ratio_ci'] == [1.0, 1.0]


def test_unpaired_images_and_empty_detections(data):
    gt, dets, _ = data
    coco = _coco(gt)
    ids = coco.getImgIds()
    a = evaluate_coco(coco, dets, img_ids=ids[:20])
    b = evaluate_coco(coco, dets, img_ids=ids[10:])
    with pytest.raises(ValueError, match='same images'):
        bootstrap_intervals({'a': a, 'b': b}, reference='a', num_resamples=10)
    none = evaluate_coco(coco, [])
    assert none.ap()[0].tolist() == [0.0, 0.0]
    assert percentile_interval(np.full(5, np.nan)) != percentile_interval(np.zeros(5))


def test_verdicts_on_hand_made_intervals():
    assert target_verdict(0.97, (0.955, 0.98), 0.95) == MET
    assert target_verdict(0.95, (0.95, 0.96), 0.95) == MET           # bound inclusive
    assert target_verdict(0.96, (0.94, 0.98), 0.95) == WITHIN_NOISE  # point meets, lo not
    assert target_verdict(0.94, (0.93, 0.96), 0.95) == WITHIN_NOISE  # point misses, hi meets
    assert target_verdict(0.90, (0.88, 0.94), 0.95) == MISSED
    # lower is better (e.g. an error): mirrored
    assert target_verdict(0.02, (0.01, 0.03), 0.05, higher_is_better=False) == MET
    assert target_verdict(0.04, (0.03, 0.06), 0.05, higher_is_better=False) == WITHIN_NOISE
    assert target_verdict(0.08, (0.06, 0.09), 0.05, higher_is_better=False) == MISSED
    assert intervals_overlap((0.1, 0.2), (0.2, 0.3)) and not intervals_overlap((0.1, 0.2),
                                                                               (0.21, 0.3))
    assert compare(0.5, (0.48, 0.52), 0.51, (0.5, 0.53)) == 'tie'
    assert compare(0.5, (0.48, 0.52), 0.45, (0.43, 0.47)) == 'a'
    assert compare(0.5, (0.48, 0.52), 0.45, (0.43, 0.47), higher_is_better=False) == 'b'
    with pytest.raises(ValueError, match='not an interval'):
        target_verdict(0.5, (0.6, 0.4), 0.5)


def test_format_table_shows_the_intervals():
    from snn_det.apis.evaluate import format_table
    from snn_det.evaluation import add_intervals
    gt = make_gt(20)
    coco = _coco(gt)
    evs = [evaluate_coco(coco, make_dets(gt, 1)), evaluate_coco(coco, make_dets(gt, 2, 0.15))]
    rows = [dict(model='ANN', T=None, calib_T=None, seconds=1.0, AP=0.5, AP50=0.7),
            dict(model='SNN', T=8, calib_T=8, seconds=2.0, AP=0.4, AP50=0.6)]
    add_intervals(rows, evs, num_resamples=50, seed=0)
    assert rows[0]['bootstrap'] == dict(resamples=50, seed=0, images=20, level=0.95)
    assert 'ratio_ci' in rows[1] and 'ratio_ci' not in rows[0]
    table = format_table(rows).splitlines()
    assert table[0] == ('| model | T | AP | AP50 | AP 95% CI | % of ANN | % of ANN 95% CI '
                        '| time (s) |')
    lo, hi = rows[1]['ratio_ci']
    assert f'[{100 * lo:.1f}, {100 * hi:.1f}] | 2.0 |' in table[3]
    # the % of the ANN is the unrounded paired ratio, not the ratio of the rounded APs
    assert f'| {100 * rows[1]["ratio"]:.1f} | [' in table[3]
    assert abs(rows[1]['ratio'] - 0.4 / 0.5) > 1e-3 and '| 80.0 |' not in table[3]


# -- the recorder inside mmengine's evaluator -------------------------------------------


def test_recorder_matches_mmdets_coco_metric(tmp_path, data):
    """The recorder sees what CocoMetric sees; its point AP is CocoMetric's, unrounded."""
    import torch
    from mmengine.evaluator import Evaluator
    from mmdet.evaluation import CocoMetric
    from snn_det.evaluation import attach_recorder, detach_recorder
    gt, dets, _ = data
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    evaluator = Evaluator([CocoMetric(ann_file=str(ann_file), metric='bbox')])
    evaluator.dataset_meta = dict(classes=('c1', 'c2', 'c3'))
    rec = attach_recorder(evaluator)
    assert attach_recorder(evaluator) is rec               # once only
    for img in gt['images']:
        mine = [d for d in dets if d['image_id'] == img['id']]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                              (d['bbox'] for d in mine)], dtype=torch.float32).reshape(-1, 4)
        sample = dict(img_id=img['id'], ori_shape=(400, 400), pred_instances=dict(
            bboxes=boxes, scores=torch.tensor([d['score'] for d in mine]),
            labels=torch.tensor([d['category_id'] - 1 for d in mine], dtype=torch.long)))
        evaluator.process([sample])
    metrics = _quiet(evaluator.evaluate, len(gt['images']))
    evaluation, seconds = rec.take()
    ap, ap50 = evaluation.ap()[0]
    assert seconds > 0 and rec.take() == (None, 0.0)
    assert round(ap, 3) == metrics['coco/bbox_mAP'] and round(ap50, 3) == metrics['coco/bbox_mAP_50']
    assert not any(k.startswith('bootstrap') for k in metrics)
    detach_recorder(evaluator)
    assert len(evaluator.metrics) == 1


# -- the held-out test split ------------------------------------------------------------


def test_the_test_split_is_new_images_and_leaves_val_unchanged(tmp_path):
    from snn_det.datasets import generate_detection_dataset
    kw = dict(seed=0, num_train=2, num_val=3, workers=1, progress=False)
    meta = generate_detection_dataset(tmp_path / 'with', num_test=4, **kw)
    generate_detection_dataset(tmp_path / 'without', **kw)
    assert meta['splits']['test']['images'] == 4 and meta['params']['num_test'] == 4
    w, wo = tmp_path / 'with', tmp_path / 'without'
    for split in ('train', 'val'):
        ann = f'coco/annotations/instances_{split}.json'
        assert (w / ann).read_bytes() == (wo / ann).read_bytes()
        for img in json.loads((w / ann).read_text())['images']:
            name = f'coco/{split}/{img["file_name"]}'
            assert (w / name).read_bytes() == (wo / name).read_bytes()
    test = json.loads((w / 'coco/annotations/instances_test.json').read_text())
    assert [i['file_name'] for i in test['images']] == [f'test_{i:06d}.jpg' for i in range(4)]
    val_bytes = {(w / 'coco/val' / f'val_{i:06d}.jpg').read_bytes() for i in range(3)}
    assert not val_bytes & {(w / 'coco/test' / i['file_name']).read_bytes()
                            for i in test['images']}
    main = w / 'VOCdevkit/VOC2007/ImageSets/Main'
    assert main.joinpath('test.txt').read_text().split() == [f'test_{i:06d}' for i in range(4)]
    assert not (wo / 'coco/test').exists()
    with pytest.raises(ValueError, match='num_test must be >= 0'):
        generate_detection_dataset(tmp_path / 'bad', num_test=-1, **kw)


def test_use_split_points_the_test_loader_at_the_test_split(tmp_path):
    from mmengine.config import Config
    from snn_det.evaluation import use_split
    cfg = Config.fromfile(osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py'))
    root = str(tmp_path / 'coco') + '/'
    cfg.merge_from_dict({'test_dataloader.dataset.data_root': root,
                         'test_evaluator.ann_file': root + 'annotations/instances_val.json'})
    with pytest.raises(FileNotFoundError, match="split 'test' is missing.*make_data.py"):
        use_split(cfg, 'test')
    use_split(cfg, 'test', check_files=False)
    ds = cfg.test_dataloader.dataset
    assert ds.ann_file == 'annotations/instances_test.json' and ds.data_prefix.img == 'test/'
    assert cfg.test_evaluator.ann_file == root + 'annotations/instances_test.json'
    assert cfg.val_dataloader.dataset.ann_file == 'annotations/instances_val.json'
    assert cfg.val_dataloader.dataset.data_prefix.img == 'val/'
    assert cfg.val_evaluator.ann_file.endswith('annotations/instances_val.json')
    use_split(cfg, 'val', check_files=False)
    assert ds.ann_file == 'annotations/instances_val.json' and ds.data_prefix.img == 'val/'
    with pytest.raises(ValueError, match='unknown split'):
        use_split(cfg, 'train')


def test_use_split_points_a_classifier_at_its_test_split():
    """The generated classification data (mmpretrain CustomDataset: meta/<split>.txt and
    the folder <split>) switches like detection data; the val loader is left alone."""
    from mmengine.config import Config
    from snn_det.evaluation import use_split
    cfg = Config.fromfile(osp.join(ROOT, 'configs/cls/resnet18n_8xb64_synth-cls.py'))
    use_split(cfg, 'test', check_files=False)
    ds = cfg.test_dataloader.dataset
    assert (ds.ann_file, ds.data_prefix) == ('meta/test.txt', 'test')
    assert cfg.val_dataloader.dataset.ann_file == 'meta/val.txt'
    cfg.test_dataloader.dataset.data_prefix = 'train'
    with pytest.raises(ValueError, match="data_prefix 'train' is not the folder of split"):
        use_split(cfg, 'val', check_files=False)


def test_top1_of_a_resample_is_the_accuracy_on_the_drawn_images(data):
    """A classifier's per-image correctness: every image once gives top-1; a resample
    gives the accuracy of the multiset it draws (an image drawn twice counts twice);
    the paired ratio of a model with itself is 1; detection and classification
    evaluations are not paired with each other."""
    from snn_det.evaluation import ClassificationEvaluation
    ev = ClassificationEvaluation.from_predictions([12, 10, 11, 13], [1, 0, 2, 3],
                                                   [1, 1, 2, 0])
    assert ev.img_ids == (10, 11, 12, 13) and ev.correct.tolist() == [False, True, True, False]
    assert ev.scores()[0, 0] == 0.5
    counts = np.array([[0, 2, 1, 0], [3, 0, 0, 1]])     # {11, 11, 12}, {10, 10, 10, 13}
    assert ev.scores(counts)[:, 0].tolist() == [1.0, 0.0]
    cis = bootstrap_intervals({'a': ev, 'b': ev}, reference='a', num_resamples=50, seed=1)
    assert cis['b']['ratio'] == 1.0 and set(cis['a']) == {'top1', 'top1_ci'}
    assert cis['a']['top1_ci'][0] <= 0.5 <= cis['a']['top1_ci'][1]
    with pytest.raises(ValueError, match='an image id occurs twice'):
        ClassificationEvaluation.from_predictions([1, 1], [0, 0], [0, 0])
    gt, dets, _ = data
    det = evaluate_coco(_coco(gt), dets)
    same_images = ClassificationEvaluation(det.img_ids, np.ones(det.num_images, bool))
    with pytest.raises(ValueError, match='different metrics'):
        bootstrap_intervals({'det': det, 'cls': same_images})
