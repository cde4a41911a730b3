# YOLOv3 with a narrow Darknet-53 (1/4 width; residual blocks and LeakyReLU kept)
# on the embedded default.  Anchors are the COCO ones scaled from 608 to 320 px.
_base_ = [
    '../_base_/models/yolov3_d53n.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/datasets/synth_coco_detection.py',
    '../_base_/synth_schedule.py',
]
default_hooks = dict(checkpoint=dict(interval=8, max_keep_ckpts=1, save_best='auto'),
                     logger=dict(interval=25))
# 8 epochs (CPU budget)
train_cfg = dict(max_epochs=8, val_interval=8)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=8, T_max=8, eta_min_ratio=0.05,
         convert_to_iter_based=True)
]
