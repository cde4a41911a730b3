# YOLOv3 with a narrow Darknet-53 (1/4 width; residual blocks and LeakyReLU kept)
# on the embedded default.  Anchors are the COCO ones scaled from 608 to 320 px.
_base_ = [
    'mmdet::yolo/yolov3_d53_8xb8-ms-608-273e_coco.py',
    '../_base_/datasets/synth_coco_detection.py',
    '../_base_/synth_schedule.py',
]
model = dict(
    backbone=dict(_delete_=True, type='ScaledDarknet', widen_factor=0.25,
                  stage_blocks=(1, 2, 4, 4, 2), out_indices=(3, 4, 5), norm_eval=False),
    neck=dict(in_channels=[256, 128, 64], out_channels=[128, 64, 32]),
    bbox_head=dict(
        num_classes=8,
        in_channels=[128, 64, 32],
        out_channels=[256, 128, 64],
        anchor_generator=dict(base_sizes=[[(61, 47), (82, 104), (196, 171)],
                                          [(16, 32), (33, 24), (31, 63)],
                                          [(5, 7), (8, 16), (17, 12)]])))
auto_scale_lr = dict(enable=False, base_batch_size=64)
