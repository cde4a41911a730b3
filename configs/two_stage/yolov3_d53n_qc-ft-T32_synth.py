# Seed 003 Stage I for YOLOv3-Darknet at T=32: the T=8 recipe (yolov3_d53n_qc-ft-T8_synth.py)
# with the QC function g_{theta,T} of this T.
_base_ = ['./yolov3_d53n_qc-ft-T8_synth.py']
T = 32
model = dict(backbone=dict(T=T, act_cfg=dict(T=T)))
