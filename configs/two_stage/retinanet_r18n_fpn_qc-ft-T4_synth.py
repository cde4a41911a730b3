# Seed 003 Stage I for T=4: the T=8 recipe (retinanet_r18n_fpn_qc-ft-T8_synth.py) with the
# QC function g_{theta,T} of this T.  Noise p=1 as at T=8: with 4 epochs, p=0.1 (the paper's
# CIFAR-10 setting for T <= 4) gave a QC-ANN of val mAP 0.354 and p=1 0.433.
_base_ = ['./retinanet_r18n_fpn_qc-ft-T8_synth.py']
T = 4
model = dict(backbone=dict(T=T, act_cfg=dict(T=T)))
