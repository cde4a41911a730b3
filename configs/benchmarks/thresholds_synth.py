# The baseline conversion (seed 001 Sec. 4.3): max / percentile / MMSE thresholds,
# per layer and per channel, with and without the ClipRound shift, no calibration.
# 12 methods at T = 16, where they differ most (the baseline_synth benchmark has the chosen
# method at T = 32 and 128), on RetinaNet R18n, evaluated on the held-out test split (all
# 400 images); the CPU budget of one clean-commit rerun (a 2-core CPU) leaves out the
# other detectors (add them to the list to rerun them: ~15 CPU-minutes each).
_base_ = ['./_synth_detectors.py']
_methods = []
for _thr in ('max', 'percentile', 'mmse'):
    for _cw in (False, True):
        for _shift in ('none', 'potential'):
            _methods.append(dict(
                name=f"{_thr}/{'channel' if _cw else 'layer'}{'+shift' if _shift != 'none' else ''}",
                conversion=dict(threshold=_thr, channel_wise=_cw, shift=_shift,
                                percentile=99.99)))
benchmark = dict(
    name='thresholds_synth',
    seed=0,
    T=[16],
    calib_images=32,
    calib_batch_size=8,
    detectors=[{{_base_.retinanet}}],
    methods=_methods,
)
# targets (snn_det.analysis.target_checks), judged on the test split's intervals
targets = [
    dict(what='thresholds (max / percentile / MMSE x layer / channel x shift), T=16',
         target='MMSE/channel + shift best (ties: overlapping intervals)',
         check=dict(type='best_of', method='mmse/channel+shift', T=16)),
]
