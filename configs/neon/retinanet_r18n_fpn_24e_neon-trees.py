# RetinaNet with a narrow ResNet-18 (base_channels=16) + FPN, as configs/synth/
# retinanet_r18n_fpn_12e_synth.py, trained from scratch on the NEON tree-crown tiles.
_base_ = [
    '../_base_/models/retinanet_r18n_fpn.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/neon_trees_detection.py',
    './_base_/neon_trees_schedule.py',
]
model = dict(
    bbox_head=dict(num_classes=1),
    # up to ~280 crowns in one whole held-out image
    test_cfg=dict(nms_pre=1000, score_thr=0.05, max_per_img=300))
# the last epoch is the model (no selection on held-out images)
default_hooks = dict(checkpoint=dict(interval=24, max_keep_ckpts=1), logger=dict(interval=10))
