# Seed 003 Table X layout on the embedded default (YOLOv3-Darknet and RetinaNet):
# Baseline, Stage I only (QC fine-tuned ANN, copied into the SNN with the theta/2T shift),
# Stage II only (CC + FC on the source ANN), Stage I + II, at T = 4 ... 64.
# Stage I checkpoints come from configs/two_stage/*qc-ft* (tools/train.py).
_base_ = ['./_synth_detectors.py']
_base = dict(threshold='mmse', channel_wise=True, shift='potential')
_fc = dict(fc_iters=60, fc_lr=1e-4, fc_patience=10, fc_loss='mse')
benchmark = dict(
    name='seed003_tableX_synth',
    seed=0,
    T=[4, 8, 16, 32, 64],
    calib_images=32,
    calib_batch_size=8,
    val_images=100,
    detectors=[{{_base_.yolov3}}, {{_base_.retinanet}}],
    methods=[
        dict(name='Baseline', conversion=dict(**_base)),
        dict(name='Stage II only', conversion=dict(**_base, calib='cc+fc', **_fc)),
    ],
)
