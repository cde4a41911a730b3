# Real aerial images: NEON tree crowns (one class) in COCO format, made by
# `python tools/make_data.py --dataset neon-trees` (docs/neon_trees.md).
# train: 400 x 400 tiles of one 2299 x 2472 photograph (overlap 200 px); test: 400 x 400
# tiles of three held-out photographs of other plots / sites; test_whole: those three whole
# (evaluate on them with the cfg options of `whole_image_cfg_options` below).  No val split:
# the schedule is fixed and the last epoch is kept, so no model is chosen on held-out data.
# Images are used at their own resolution (0.1 m per pixel): Resize(scale_factor=1.0) only
# records the scale factor; the data_preprocessor pads to a multiple of 32.
dataset_type = 'CocoDataset'
data_root = 'data/neon_trees/'
classes = ('tree', )
metainfo = dict(classes=classes, palette=[(34, 139, 34)])
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    # the 8 symmetries of a square aerial tile: flips (diagonal = 180 degrees) then a
    # rotation by +-90 degrees (exact for square tiles: corners map to corners)
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='Rotate', prob=0.5, min_mag=90.0, max_mag=90.0, reversal_prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=24, contrast_range=(0.75, 1.25),
         saturation_range=(0.75, 1.25), hue_delta=9),
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='test/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_test.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
# no validation during training (fixed schedule, last epoch)
val_dataloader = None
val_cfg = None
val_evaluator = None
# The held-out photographs whole (1249 x 1035, 400 x 400, 400 x 400), one per batch:
#   tools/test.py CONFIG CKPT --cfg-options test_dataloader.dataset.ann_file=annotations/instances_test_whole.json \
#       test_dataloader.dataset.data_prefix.img=test_whole/ test_dataloader.batch_size=1 \
#       test_evaluator.ann_file=data/neon_trees/annotations/instances_test_whole.json
whole_image_cfg_options = {
    'test_dataloader.dataset.ann_file': 'annotations/instances_test_whole.json',
    'test_dataloader.dataset.data_prefix.img': 'test_whole/',
    'test_dataloader.batch_size': 1,
    'test_evaluator.ann_file': data_root + 'annotations/instances_test_whole.json',
}
