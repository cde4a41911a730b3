# YOLOv3 with a narrow Darknet-53 (1/4 width; residual blocks and LeakyReLU kept), as
# configs/synth/yolov3_d53n_8e_synth.py, trained from scratch on the NEON tree-crown tiles.
# Anchors: 9-means of the train split's box sizes (w, h in px; crowns are 15-86 px).
_base_ = [
    'mmdet::_base_/default_runtime.py',
    './_base_/neon_trees_detection.py',
    './_base_/neon_trees_schedule.py',
]
data_preprocessor = dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[255., 255., 255.],
                         bgr_to_rgb=True, pad_size_divisor=32)
model = dict(
    type='YOLOV3',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ScaledDarknet', widen_factor=0.25, stage_blocks=(1, 2, 4, 4, 2),
                  out_indices=(3, 4, 5), norm_eval=False),
    neck=dict(type='YOLOV3Neck', num_scales=3, in_channels=[256, 128, 64],
              out_channels=[128, 64, 32]),
    bbox_head=dict(
        type='YOLOV3Head',
        num_classes=1,
        in_channels=[128, 64, 32],
        out_channels=[256, 128, 64],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(64, 53), (58, 68), (86, 86)],
                        [(38, 40), (48, 40), (46, 53)],
                        [(15, 15), (23, 22), (32, 32)]],
            strides=[32, 16, 8]),
        bbox_coder=dict(type='YOLOBBoxCoder'),
        featmap_strides=[32, 16, 8],
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0,
                      reduction='sum'),
        loss_conf=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0,
                       reduction='sum'),
        loss_xy=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0,
                     reduction='sum'),
        loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction='sum')),
    train_cfg=dict(assigner=dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                 min_pos_iou=0)),
    # up to ~280 crowns in one whole held-out image
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                  nms=dict(type='nms', iou_threshold=0.45), max_per_img=300))
# the last epoch is the model (no selection on held-out images)
default_hooks = dict(checkpoint=dict(interval=24, max_keep_ckpts=1), logger=dict(interval=10))
