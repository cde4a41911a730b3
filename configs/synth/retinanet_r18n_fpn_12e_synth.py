# RetinaNet with a narrow ResNet-18 (base_channels=16) + FPN on the embedded default.
_base_ = [
    '../_base_/models/retinanet_r18n_fpn.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/datasets/synth_coco_detection.py',
    '../_base_/synth_schedule.py',
]
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=1, save_best='auto'),
                     logger=dict(interval=25))
