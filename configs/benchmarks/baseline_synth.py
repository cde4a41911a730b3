# The baseline conversion of every detector of the embedded default: MMSE channel-wise
# thresholds with the ClipRound shift (v(0) = theta/2), no calibration, at T = 32 and 128
# (issue 3 target: >= 90% of the ANN mAP at T = 128).
_base_ = ['./_synth_detectors.py']
benchmark = dict(
    name='baseline_synth',
    seed=0,
    T=[32, 128],
    calib_images=16,
    calib_batch_size=8,
    val_images=100,
    chunk_size=32,
    detectors=[{{_base_.retinanet}}, {{_base_.faster_rcnn}}, {{_base_.yolov3}}],
    methods=[dict(name='MMSE/channel+shift',
                  conversion=dict(threshold='mmse', channel_wise=True, shift='potential'))],
)
