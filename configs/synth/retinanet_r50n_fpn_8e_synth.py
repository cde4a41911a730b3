# RetinaNet with a narrow ResNet-50 (bottleneck blocks, base_channels=16: stage outputs
# 64/128/256/512) + FPN on the embedded default: 49 spiking sites, the depth of seed 001's
# Table 4 (issue 14).  Same schedule as the R18n model, 8 epochs.
_base_ = ['./retinanet_r18n_fpn_12e_synth.py']
model = dict(
    backbone=dict(depth=50, base_channels=16),
    neck=dict(in_channels=[128, 256, 512]))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=8, T_max=8, eta_min_ratio=0.05,
         convert_to_iter_based=True)
]
