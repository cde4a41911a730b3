# ResNet-20 (He et al. 2016, 3 stages x 3 BasicBlocks, widths 16/32/64) on CIFAR-10:
# the classic ANN-to-SNN conversion benchmark.  Data: the standard python batches,
#   data/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
# (download=False: put them there yourself).  The backbone is snn_det's ResNetCIFAR,
# an mmdet ResNet with the CIFAR stem (3x3 s1, no pooling) that the converter supports;
# tools/convert.py wraps it into a SpikingBackbone.
_base_ = ['./_base_/default_runtime.py']
default_scope = 'mmdet'   # SpikingBackbone / ResNet(CIFAR) resolve in mmdet's registry
custom_imports = dict(imports=['snn_det', 'snn_det.models.classifier', 'mmpretrain.models',
                               'mmpretrain.datasets', 'mmpretrain.evaluation'],
                      allow_failed_imports=False)

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor', num_classes=10,
        mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255],
        to_rgb=False),   # CIFAR images are loaded as RGB
    backbone=dict(
        type='ResNetCIFAR', depth=20, base_channels=16, num_stages=3, strides=(1, 2, 2),
        dilations=(1, 1, 1), out_indices=(2, ), frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
        init_cfg=None),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead', num_classes=10, in_channels=64,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))

# ---- data -------------------------------------------------------------------
dataset_type = 'mmpretrain.CIFAR10'
data_root = 'data/cifar10'
train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [dict(type='mmpretrain.PackInputs')]
train_dataloader = dict(
    batch_size=128, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', download=False,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', download=False,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# ---- schedule (1 GPU x 128) ----------------------------------------------------
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[100, 150], gamma=0.1)
auto_scale_lr = dict(enable=False, base_batch_size=128)

# ---- runtime: ./_base_/default_runtime.py
