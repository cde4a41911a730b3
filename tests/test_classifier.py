"""Image classification through the same SpikingBackbone / converter path as detection."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from helpers import randomize_bn
from snn_det.apis import save_converted, wrap_backbone_cfg
from snn_det.conversion import ConversionConfig
from snn_det.pipeline import convert_backbone
from snn_det.conversion.ops import AnnOps
from snn_det.datasets import SYNTH_CLASSES, generate_classification_dataset
from snn_det.evaluation import AccuracyRecorder, bootstrap_intervals
from mmdet.registry import MODELS
# mmpretrain is a dependency (requirements/runtime.txt): a missing one fails, not skips
from mmpretrain.evaluation import Accuracy

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CFG_DIR = osp.join(ROOT, 'configs', 'cls')
SYNTH_CFG = osp.join(CFG_DIR, 'resnet18n_8xb64_synth-cls.py')


def load_cfg(path):
    cfg = Config.fromfile(path)          # imports snn_det, the ResNetCIFAR module, mmpretrain
    init_default_scope(cfg.default_scope)
    return cfg


def build_spiking_classifier(cfg, T=16, seed=0):
    """Wrap the config's backbone like tools/convert.py does and build the classifier."""
    wrap_backbone_cfg(cfg, T, dict(threshold='mmse', channel_wise=True))
    model = MODELS.build(cfg.model)
    # the parts one by one: ImageClassifier.init_weights() trips over SpikingBackbone's
    # init bookkeeping (see test_parent_init_weights_with_a_spiking_backbone)
    model.backbone.init_weights()
    model.head.init_weights()
    randomize_bn(model, seed)
    return model.eval()


@pytest.fixture(scope='module')
def tiny_cls(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth')
    generate_classification_dataset(root, seed=0, num_train=16, num_val=16, workers=1,
                                    progress=False)
    return root


def loader(cfg, split, root):
    lc = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    lc.dataset.data_root = str(root / 'cls')
    if split == 'train':     # calibration: no augmentation, as snn_det.apis.calib_data does
        lc.dataset.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    lc.update(batch_size=8, num_workers=0, persistent_workers=False,
              sampler=dict(type='DefaultSampler', shuffle=False))
    return Runner.build_dataloader(lc, seed=0)


@torch.no_grad()
def predict(model, data_loader):
    samples = []
    for batch in data_loader:
        data = model.data_preprocessor(batch, False)
        samples += model(**data, mode='predict')
    return samples


@torch.no_grad()
def fit_head(model, inputs, labels, ridge=1e-2):
    feats = torch.cat([model.extract_feat(x)[-1] for x in inputs])
    feats = torch.cat([feats, torch.ones(len(feats), 1)], 1)
    target = torch.nn.functional.one_hot(labels, model.head.num_classes).float()
    a = feats.T @ feats + ridge * torch.eye(feats.shape[1])
    w = torch.linalg.solve(a, feats.T @ target)
    model.head.fc.weight.copy_(w[:-1].T)
    model.head.fc.bias.copy_(w[-1])


def test_synth_classifier_converts_and_scores_real_predictions(tiny_cls, tmp_path):
    cfg = load_cfg(SYNTH_CFG)
    model = build_spiking_classifier(cfg, T=16)
    bb = model.backbone
    assert type(bb).__name__ == 'SpikingBackbone'
    assert type(bb.graph).__name__ == 'ResNetGraph'
    assert model.backbone is bb and cfg.model.backbone.type == 'SpikingBackbone'

    val = loader(cfg, 'val', tiny_cls)
    assert len(val.dataset) == 16
    assert val.dataset.metainfo['classes'] == SYNTH_CLASSES
    train = loader(cfg, 'train', tiny_cls)
    calib = [model.data_preprocessor(b, False)['inputs'] for b in train]
    # a random network predicts (nearly) one class for everything: fit the linear head on
    # the 16 training images (ridge regression on the pooled ANN features) so the labels vary
    fit_head(model, calib, torch.cat([s.gt_label for b in train for s in b['data_samples']]))
    convert_backbone(bb, calib, [4, 16], ConversionConfig(), progress=False)
    assert bb.converted_T == [4, 16]

    def run(mode, T=None):
        bb.set_mode(mode, T)
        samples = predict(model, val)
        scores = torch.stack([s.pred_score for s in samples])
        labels = torch.stack([s.pred_label for s in samples]).reshape(-1)
        gt = torch.cat([s.gt_label for s in samples])
        metric = Accuracy(topk=(1, 5))
        metric.dataset_meta = val.dataset.metainfo
        recorder = AccuracyRecorder(metric)          # per-image top-1, for intervals
        for m in (metric, recorder):
            m.process(None, [s.to_dict() for s in samples])
        res = metric.evaluate(len(samples))
        recorder.evaluate(len(samples))
        evaluations[mode if T is None else T] = recorder.take()[0]
        return scores, labels, gt, res

    evaluations = {}
    ann_scores, ann_labels, gt, ann_res = run('ann')
    # labels come from the meta txt: index % 8
    assert gt.tolist() == [i % 8 for i in range(16)]
    # the predict path is argmax of the head on the backbone's last feature map
    batch = default_collate([val.dataset[i] for i in range(16)])
    inputs = model.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        feats = bb(inputs)
    assert isinstance(feats, tuple) and feats[-1].shape[1] == 128
    assert torch.equal(logits.argmax(1), ann_labels)
    assert torch.allclose(logits.softmax(1), ann_scores, atol=1e-6)

    agreement = {}
    for T in (4, 16):
        scores, labels, gt_T, res = run('snn', T)
        assert torch.equal(gt_T, gt)
        # the reported top-1 is the fraction of argmax(score) == label, in percent
        top1 = 100.0 * (scores.argmax(1) == gt).float().mean().item()
        assert res['accuracy/top1'] == pytest.approx(top1, abs=1e-4)
        top5 = 100.0 * (scores.topk(5, 1).indices == gt[:, None]).any(1).float().mean().item()
        assert res['accuracy/top5'] == pytest.approx(top5, abs=1e-4)
        assert torch.equal(labels, scores.argmax(1))
        agreement[T] = (labels == ann_labels).float().mean().item()
        # the SNN's scores approach the ANN's with more steps
        agreement[f'err{T}'] = float(((scores - ann_scores) ** 2).sum()
                                     / (ann_scores ** 2).sum())
        snn_scores = scores
    assert ann_res['accuracy/top1'] == pytest.approx(
        100.0 * (ann_labels == gt).float().mean().item(), abs=1e-4)
    assert agreement['err16'] < agreement['err4'], agreement
    assert agreement[16] >= agreement[4], agreement
    # the recorded per-image correctness gives mmpretrain's top-1 back, and the intervals
    # of each model and of the paired SNN/ANN ratio around their points
    assert evaluations['ann'].img_ids == tuple(range(16))
    assert 100 * evaluations['ann'].scores()[0, 0] == pytest.approx(ann_res['accuracy/top1'])
    cis = bootstrap_intervals(evaluations, reference='ann', num_resamples=200, seed=0)
    for T in (4, 16):
        assert 100 * cis[T]['top1'] == pytest.approx(100 * float(
            evaluations[T].correct.mean()))
        lo, hi = cis[T]['top1_ci']
        assert lo <= cis[T]['top1'] <= hi
        assert cis[T]['ratio'] == pytest.approx(cis[T]['top1'] / cis['ann']['top1'])
        assert cis[T]['ratio_ci'][0] <= cis[T]['ratio'] <= cis[T]['ratio_ci'][1]

    # the converted pair written by the tools' API rebuilds the same SNN (T=16 ran last)
    ckpt, cfg_path = save_converted(model, cfg, str(tmp_path), 'cls_snn', dict(converted_T=[4, 16]))
    assert torch.load(ckpt, weights_only=True)['meta']['converted_T'] == [4, 16]
    cfg2 = load_cfg(cfg_path)
    assert cfg2.model.backbone.converted_T == [4, 16]
    model2 = MODELS.build(cfg2.model).eval()
    load_checkpoint(model2, ckpt, map_location='cpu', logger='silent')
    model2.backbone.set_mode('snn', 16)
    again = torch.stack([s.pred_score for s in predict(model2, val)])
    assert torch.allclose(again, snn_scores, atol=1e-6)


REAL_CONFIGS = [
    # config, input size (small: any size runs), number of classes, spiking sites
    ('resnet20_cifar10.py', 32, 10, 1 + 9 * 2),
    ('resnet18_cifar100.py', 16, 100, 1 + 8 * 2),
    ('resnet34_imagenet.py', 48, 1000, 1 + 16 * 2),
]


@pytest.mark.parametrize('name,size,num_classes,sites', REAL_CONFIGS)
def test_real_data_configs_build_convert_and_run(name, size, num_classes, sites):
    cfg = load_cfg(osp.join(CFG_DIR, name))
    inner = copy.deepcopy(cfg.model.backbone)
    model = build_spiking_classifier(cfg, T=4)
    bb = model.backbone
    assert type(bb).__name__ == 'SpikingBackbone'
    assert type(bb.graph).__name__ == 'ResNetGraph'
    assert len(bb.graph.sites) == sites
    assert cfg.model.backbone.backbone == inner
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():   # the call graph reproduces the ANN (incl. the CIFAR stem)
        for a, b in zip(bb.ann(x), bb.graph.forward(x, AnnOps(bb.graph))):
            assert torch.allclose(a, b, atol=1e-4)
    convert_backbone(bb, [torch.randn(2, 3, size, size)], [4],
                     ConversionConfig(threshold='max'), progress=False)
    bb.set_mode('snn', 4)
    with torch.no_grad():
        feats = bb(x)
        logits = model(x, mode='tensor')
    assert len(feats) == 1 and feats[-1].shape[0] == 1
    assert logits.shape == (1, num_classes) and torch.isfinite(logits).all()


def test_resnet_cifar_rejects_too_many_stages():
    init_default_scope('mmdet')
    import snn_det.models.classifier  # noqa: F401
    with pytest.raises(ValueError, match='num_stages=3'):
        MODELS.build(dict(type='ResNetCIFAR', depth=20))


def test_parent_init_weights_with_a_spiking_backbone():
    cfg = load_cfg(SYNTH_CFG)
    wrap_backbone_cfg(cfg, 4)
    model = MODELS.build(cfg.model)
    w0 = model.backbone.conv1.weight.detach().clone()
    model.init_weights()       # what Runner.train() does before load_from
    assert not torch.equal(w0, model.backbone.conv1.weight)
    assert not any(hasattr(m, '_params_init_info') for m in model.modules())
