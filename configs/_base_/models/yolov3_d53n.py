# YOLOv3 with a narrow Darknet-53 (1/4 width; residual blocks and LeakyReLU kept), trained
# from scratch here (configs/synth/, configs/neon/ set the classes, anchors, test limits).
# Anchors: the COCO ones scaled from 608 to 320 px.
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
        num_classes=8,
        in_channels=[128, 64, 32],
        out_channels=[256, 128, 64],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(61, 47), (82, 104), (196, 171)],
                        [(16, 32), (33, 24), (31, 63)],
                        [(5, 7), (8, 16), (17, 12)]],
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
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                  nms=dict(type='nms', iou_threshold=0.45), max_per_img=100))
