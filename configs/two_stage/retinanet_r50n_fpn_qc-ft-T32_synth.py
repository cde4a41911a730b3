# Seed 003 Stage I for the R50n RetinaNet at T=32: the T=8 recipe
# (retinanet_r50n_fpn_qc-ft-T8_synth.py) with the QC function g_{theta,T} of this T.
_base_ = ['./retinanet_r50n_fpn_qc-ft-T8_synth.py']
T = 32
model = dict(backbone=dict(T=T, act_cfg=dict(T=T)))
# the shipped checkpoint had 2 epochs (the T=8 and T=16 ones 4), for CPU time
epochs = 2
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval=epochs))
