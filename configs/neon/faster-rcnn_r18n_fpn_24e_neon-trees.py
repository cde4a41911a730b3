# Faster R-CNN with a narrow ResNet-18 (base_channels=16) + FPN, as configs/synth/
# faster-rcnn_r18n_fpn_8e_synth.py, trained from scratch on the NEON tree-crown tiles.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/neon_trees_detection.py',
    './_base_/neon_trees_schedule.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64, num_outs=5),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=1)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500),
                   rcnn=dict(sampler=dict(num=256))),
    # up to ~280 crowns in one whole held-out image
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=600), rcnn=dict(max_per_img=300)))
# the last epoch is the model (no selection on held-out images)
default_hooks = dict(checkpoint=dict(interval=24, max_keep_ckpts=1), logger=dict(interval=10))
