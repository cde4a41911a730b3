# RetinaNet with a narrow ResNet-18 (base_channels=16) + FPN, trained from scratch here
# (configs/synth/, configs/neon/ set the classes and the test limits).
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
model = dict(
    backbone=dict(depth=18, base_channels=16, out_indices=(1, 2, 3), frozen_stages=-1,
                  norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128], out_channels=64, start_level=0, num_outs=5),
    bbox_head=dict(num_classes=8, in_channels=64, feat_channels=64, stacked_convs=2),
    test_cfg=dict(score_thr=0.05, max_per_img=100))
