# Seed 003 Stage I for the ResNet-50-depth RetinaNet (issue 14: 49 spiking sites), T=8:
# the R18n recipe (retinanet_r18n_fpn_qc-ft-T8_synth.py: g_{theta,T} on every backbone site,
# thresholds from the 99.9th percentile, lr 1e-4, noise p=1) on the R50n detector, 4 epochs
# (2 gave 0.447 against 0.457 for 4 on this 49-site network).  The -T4 / -T16 / -T32
# configs change T (and the epochs) only.  Then (Stage II):
#   python tools/convert.py configs/two_stage/retinanet_r50n_fpn_qc-ft-T8_synth.py \
#       checkpoints/retinanet_r50n_fpn_qc-ft-T8_synth.pth --T 8 --calib cc+fc
_base_ = ['./retinanet_r18n_fpn_qc-ft-T8_synth.py']
model = dict(
    backbone=dict(backbone=dict(depth=50, base_channels=16)),
    neck=dict(in_channels=[128, 256, 512]))
load_from = 'checkpoints/retinanet_r50n_fpn_8e_synth.pth'
epochs = 4
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval=epochs))
