# Seed 003 Stage I for T=4: the T=8 recipe (retinanet_r18n_fpn_qc-ft-T8_synth.py) with the
# QC function g_{theta,T} of this T and quantization noise p=0.1 (seed 003 Sec. VI-A injects noise
# for T <= 4).
_base_ = ['./retinanet_r18n_fpn_qc-ft-T8_synth.py']
T = 4
model = dict(backbone=dict(T=T, act_cfg=dict(T=T, p=0.1)))
