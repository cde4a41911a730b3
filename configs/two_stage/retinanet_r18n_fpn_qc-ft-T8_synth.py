# Seed 003 Stage I on the embedded default: QC fine-tuning of the trained RetinaNet.
# Every backbone activation site becomes g_{theta,T} (Eq. 12/15: round with the theta/2T
# shift, trainable theta, quantization noise p=0.1), thresholds start at the 99.9th
# percentile of the ANN's activations (QCThresholdInitHook), and the whole detector is
# fine-tuned with its own loss at lr 1e-4.  Then convert (Stage II):
#   python tools/convert.py configs/two_stage/retinanet_r18n_fpn_qc-ft-T8_synth.py \
#       work_dirs/two_stage/retinanet_qc/epoch_2.pth --T 8 --calib cc+fc
_base_ = ['../synth/retinanet_r18n_fpn_12e_synth.py']
T = 8
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=True, style='pytorch', init_cfg=None),
    T=T,
    act_cfg=dict(type='QCActivation', T=T, p=0.1),
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential')))
load_from = 'checkpoints/retinanet_r18n_fpn_12e_synth.pth'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=64, percentile=99.9)]
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=2, T_max=2,
                        eta_min_ratio=0.1, convert_to_iter_based=True)]
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
default_hooks = dict(checkpoint=dict(interval=2))
