# Seed 003 Stage I for the R50n RetinaNet at T=4: the T=8 recipe
# (retinanet_r50n_fpn_qc-ft-T8_synth.py, 4 epochs) with g_{theta,T} of this T.
_base_ = ['./retinanet_r50n_fpn_qc-ft-T8_synth.py']
T = 4
model = dict(backbone=dict(T=T, act_cfg=dict(T=T)))
