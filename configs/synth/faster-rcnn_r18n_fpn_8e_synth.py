# Faster R-CNN (8 epochs) with a narrow ResNet-18 (base_channels=16) + FPN on the embedded default.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/datasets/synth_coco_detection.py',
    '../_base_/synth_schedule.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64, num_outs=5),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=8)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500),
                   rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
default_hooks = dict(checkpoint=dict(interval=8, max_keep_ckpts=1, save_best='auto'),
                     logger=dict(interval=25))
# 8 epochs (CPU budget)
train_cfg = dict(max_epochs=8, val_interval=8)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=8, T_max=8, eta_min_ratio=0.05,
         convert_to_iter_based=True)
]
