# Seed 003 Stage I for YOLOv3-Darknet at T=16: the T=8 recipe (yolov3_d53n_qc-ft-T8_synth.py,
# signed QC function for the Leaky-ReLU sites, Eq. 22) with g_{theta,16} and no noise (p=1,
# as seed 003 Sec. VI-A for T > 4), 3 epochs.
_base_ = ['./yolov3_d53n_qc-ft-T8_synth.py']
T = 16
epochs = 3
model = dict(backbone=dict(T=T, act_cfg=dict(T=T, p=1.0)))
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval=epochs))
