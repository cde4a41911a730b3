# Seed 003 Stage I on the embedded default: QC fine-tuning of the trained RetinaNet for T=8.
# Every backbone activation site becomes g_{theta,T} (Eq. 12/15: round with the theta/2T
# shift, trainable theta), thresholds start at the 99.9th percentile of the ANN's
# activations (QCThresholdInitHook), and the whole detector is fine-tuned with its own loss
# at lr 1e-4 for 4 epochs.  Quantization noise p=1 (every element quantized), as seed 003
# Sec. VI-A does for T > 4: with 2 epochs, p=0.1 gave a QC-ANN of val mAP 0.476 and p=1 0.489.
# Seed 003 fine-tunes one QC-ANN per T; the -T4 / -T16 configs change T (and p) only.
# Then convert (Stage II):
#   python tools/convert.py configs/two_stage/retinanet_r18n_fpn_qc-ft-T8_synth.py \
#       checkpoints/retinanet_r18n_fpn_qc-ft-T8_synth.pth --T 8 --calib cc+fc
_base_ = ['../synth/retinanet_r18n_fpn_12e_synth.py']
T = 8
p = 1.0
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=True, style='pytorch', init_cfg=None),
    T=T,
    act_cfg=dict(type='QCActivation', T=T, p=p),
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential')))
load_from = 'checkpoints/retinanet_r18n_fpn_12e_synth.pth'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=64, percentile=99.9)]
epochs = 4
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
default_hooks = dict(checkpoint=dict(interval=epochs))
