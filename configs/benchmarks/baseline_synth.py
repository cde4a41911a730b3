# The baseline conversion of the R18n detectors of the embedded default: MMSE channel-wise
# thresholds with the ClipRound shift (v(0) = theta/2), no calibration, at T = 32 and 128
# (issue 3 target: >= 90% of the ANN mAP at T = 128), on the held-out test split (all 400
# images).  YOLOv3 D53n is not in this table: at T = 128 it costs ~80 CPU-minutes on 400
# images here (its Baseline at T = 16 is in seed001_table4_synth).
_base_ = ['./_synth_detectors.py']
benchmark = dict(
    name='baseline_synth',
    seed=0,
    T=[32, 128],
    calib_images=16,
    calib_batch_size=8,
    chunk_size=32,
    detectors=[{{_base_.retinanet}}, {{_base_.faster_rcnn}}],
    methods=[dict(name='MMSE/channel+shift',
                  conversion=dict(threshold='mmse', channel_wise=True, shift='potential'))],
)
# targets (snn_det.analysis.target_checks), judged on the test split's intervals
targets = [
    dict(what='Baseline (MMSE/channel + shift), every detector, T=128',
         target='>= 90% of the ANN',
         check=dict(type='ratio_at', method='MMSE/channel+shift', T=128, bound=0.90)),
]
