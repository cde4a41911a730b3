# Seed 003 Stage I for T=4: the T=8 recipe (retinanet_r18n_fpn_qc-ft-T8_synth.py) with the
# QC function g_{theta,T} of this T, noise p=1, and 8 epochs instead of 4: four quantization
# levels take longer to recover.  Val mAP of the QC-ANN: 0.354 with 4 epochs and p=0.1 (the
# paper's CIFAR-10 setting for T <= 4), 0.433 with 4 epochs and p=1, 0.457 with 8 and p=1.
_base_ = ['./retinanet_r18n_fpn_qc-ft-T8_synth.py']
T = 4
epochs = 8
model = dict(backbone=dict(T=T, act_cfg=dict(T=T)))
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval=epochs))
