# YOLOv3 with a narrow Darknet-53 (1/4 width; residual blocks and LeakyReLU kept), as
# configs/synth/yolov3_d53n_8e_synth.py, trained from scratch on the NEON tree-crown tiles.
# Anchors: 9-means of the train split's box sizes (w, h in px; crowns are 15-86 px).
_base_ = [
    '../_base_/models/yolov3_d53n.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/neon_trees_detection.py',
    './_base_/neon_trees_schedule.py',
]
model = dict(
    bbox_head=dict(
        num_classes=1,
        anchor_generator=dict(base_sizes=[[(64, 53), (58, 68), (86, 86)],
                                          [(38, 40), (48, 40), (46, 53)],
                                          [(15, 15), (23, 22), (32, 32)]])),
    # up to ~280 crowns in one whole held-out image
    test_cfg=dict(max_per_img=300))
# the last epoch is the model (no selection on held-out images)
default_hooks = dict(checkpoint=dict(interval=24, max_keep_ckpts=1), logger=dict(interval=10))
