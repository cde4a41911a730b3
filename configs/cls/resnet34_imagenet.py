# ResNet-34 (mmdet ResNet, standard 7x7 stem + max-pool) on ImageNet-1k.
# Data: the standard layout, data/imagenet/{train,val}/<wnid>/*.JPEG with the optional
# annotation lists data/imagenet/meta/{train,val}.txt ("<relative path> <label>"; without
# them the class folders are scanned).  mmdet's ResNet has the same state-dict names as
# mmpretrain's ResNet (backbone.*, head.fc.*), so mmpretrain's resnet34_8xb32_in1k
# checkpoint can be given as load_from / to tools/convert.py directly.
_base_ = ['./_base_/default_runtime.py']
default_scope = 'mmdet'   # SpikingBackbone / ResNet resolve in mmdet's registry
custom_imports = dict(imports=['snn_det', 'snn_det.models.classifier', 'mmpretrain.models',
                               'mmpretrain.datasets', 'mmpretrain.evaluation'],
                      allow_failed_imports=False)

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor', num_classes=1000,
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        to_rgb=True),   # images are loaded as BGR
    backbone=dict(
        type='ResNet', depth=34, num_stages=4, strides=(1, 2, 2, 2), out_indices=(3, ),
        frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
        style='pytorch', init_cfg=None),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead', num_classes=1000, in_channels=512,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))

# ---- data -------------------------------------------------------------------
dataset_type = 'mmpretrain.ImageNet'
data_root = 'data/imagenet'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.RandomResizedCrop', scale=224),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short'),
    dict(type='mmpretrain.CenterCrop', crop_size=224),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=5, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=5, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# ---- schedule (8 GPUs x 32, mmpretrain's resnet34_8xb32_in1k) -----------------
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
auto_scale_lr = dict(enable=False, base_batch_size=256)

# ---- runtime: ./_base_/default_runtime.py
default_hooks = dict(checkpoint=dict(interval=1))
