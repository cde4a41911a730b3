# Seed 003 Stage I for the R50n RetinaNet at T=4: the T=8 recipe
# (retinanet_r50n_fpn_qc-ft-T8_synth.py) with g_{theta,T} of this T and 4 epochs instead of
# 2: four quantization levels take longer to recover (on R18n, 4 -> 8 epochs gave
# 0.433 -> 0.457).
_base_ = ['./retinanet_r50n_fpn_qc-ft-T8_synth.py']
T = 4
epochs = 4
model = dict(backbone=dict(T=T, act_cfg=dict(T=T)))
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval=epochs))
