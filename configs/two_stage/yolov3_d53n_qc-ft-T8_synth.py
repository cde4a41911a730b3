# Seed 003 Stage I for YOLOv3-Darknet: Leaky-ReLU sites use the signed QC function
# clip(1/theta [LeakyReLU(x)]_{theta/T}, -1, 1) (Eq. 22) with quantization noise.
_base_ = ['../synth/yolov3_d53n_8e_synth.py']
T = 8
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone=dict(type='ScaledDarknet', widen_factor=0.25, stage_blocks=(1, 2, 4, 4, 2),
                  out_indices=(3, 4, 5), norm_eval=True),
    T=T,
    act_cfg=dict(type='QCActivation', T=T, p=0.1),
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential')))
load_from = 'checkpoints/yolov3_d53n_8e_synth.pth.gz'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=64, percentile=99.9)]
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=2, T_max=2,
                        eta_min_ratio=0.1, convert_to_iter_based=True)]
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
default_hooks = dict(checkpoint=dict(interval=2))
