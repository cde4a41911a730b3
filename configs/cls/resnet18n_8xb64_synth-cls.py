# Narrow mmdet ResNet-18 (base_channels=16) classifying the generated 32x32 shape images
# (data/synth/cls, 8 classes, 3000 train / 600 val / 600 held-out test;
# `python tools/make_data.py`).
# The classifier is mmpretrain's ImageClassifier; its backbone is the plain mmdet ResNet
# (an ANN): tools/convert.py wraps it into a SpikingBackbone, exactly as for detectors.
# Trains on 2 CPU cores in a few minutes:
#   OMP_NUM_THREADS=1 python tools/train.py configs/cls/resnet18n_8xb64_synth-cls.py
_base_ = ['./_base_/default_runtime.py']
default_scope = 'mmdet'   # SpikingBackbone / ResNet resolve in mmdet's registry
custom_imports = dict(imports=['snn_det', 'snn_det.models.classifier', 'mmpretrain.models',
                               'mmpretrain.datasets', 'mmpretrain.evaluation'],
                      allow_failed_imports=False)

synth_classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon',
                 'crescent')   # == snn_det.datasets.SYNTH_CLASSES (label order of meta/*.txt)

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor', num_classes=8,
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    backbone=dict(
        type='ResNet', depth=18, base_channels=16, num_stages=4,
        strides=(1, 1, 2, 2),   # mmdet stem (/4) -> 8x8, 8x8, 4x4, 2x2 feature maps for 32x32 input
        out_indices=(3, ), frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False, style='pytorch', init_cfg=None),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead', num_classes=8, in_channels=128,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))

# ---- data -------------------------------------------------------------------
data_root = 'data/synth/cls/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=2, padding_mode='reflect'),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmpretrain.CustomDataset', data_root=data_root,
                 ann_file='meta/train.txt', data_prefix='train',
                 metainfo=dict(classes=synth_classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=100, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmpretrain.CustomDataset', data_root=data_root,
                 ann_file='meta/val.txt', data_prefix='val',
                 metainfo=dict(classes=synth_classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))   # accuracy/top1, accuracy/top5
test_evaluator = val_evaluator

# ---- schedule ---------------------------------------------------------------
max_epochs = 60
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs, T_max=max_epochs - 1,
         eta_min=1e-4, convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=64)

# ---- runtime: ./_base_/default_runtime.py
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(max_keep_ckpts=1))
