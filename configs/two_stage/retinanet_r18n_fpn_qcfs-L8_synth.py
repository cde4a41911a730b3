# Seed 002: RetinaNet whose backbone ReLUs are QCFS activations (Eq. 15, L=8, trainable
# lambda, gradients of Eq. 17), fine-tuned from the trained ANN.  Converting sets
# theta = lambda and v(0) = theta/2 (Theorem 2).
_base_ = ['../synth/retinanet_r18n_fpn_12e_synth.py']
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=True, style='pytorch', init_cfg=None),
    T=8,
    act_cfg=dict(type='QCFS', L=8),
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential')))
load_from = 'checkpoints/retinanet_r18n_fpn_12e_synth.pth'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=64, percentile=99.9)]
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=2, T_max=2,
                        eta_min_ratio=0.1, convert_to_iter_based=True)]
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
default_hooks = dict(checkpoint=dict(interval=2))
