# Seed 003 Stage I for classification on the embedded default: the trained ResNet-18n
# classifier's activations become g_{theta,T} (Eq. 12/15, round with the theta/2T shift,
# trainable theta; p=1, i.e. no quantization noise, as seed 003 Sec. VI-A does on CIFAR-10
# for T > 4 (p=0.1 gave 94.5 instead of 95.3 top-1 here)), thresholds start at the 99.9th
# percentile of the ANN's activations, and the whole classifier is fine-tuned with its
# own loss at lr 1e-4 (seed 003 Sec. VI-A).  Then Stage II:
#   python tools/convert.py configs/two_stage/resnet18n_qc-ft-T16_synth-cls.py \
#       checkpoints/cls_resnet18n_qc-ft-T16_synth.pth --T 8 16 --calib cc+fc
# (the classifier's Stage II uses the KL loss of Eq. 19 and Adam lr 5e-4, set below)
_base_ = ['../cls/resnet18n_8xb64_synth-cls.py']
T = 16
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4, strides=(1, 1, 2, 2),
                  out_indices=(3, ), frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=True, style='pytorch', init_cfg=None),
    T=T,
    act_cfg=dict(type='QCActivation', T=T, p=1.0),
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential', fc_loss='kl',
                    fc_lr=5e-4)))
load_from = 'checkpoints/cls_resnet18n_synth.pth'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=256, percentile=99.9)]
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
                        T_max=max_epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
