# The baseline conversion (seed 001 Sec. 4.3): max / percentile / MMSE thresholds,
# per layer and per channel, with and without the ClipRound shift, no calibration.
# 12 methods at T = 32, where they differ most (the baseline_synth benchmark has the chosen
# method at T = 32 and 128 for every detector); a 2-core CPU evaluates 100 val images.
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
    T=[32],
    calib_images=32,
    calib_batch_size=8,
    val_images=100,
    detectors=[{{_base_.retinanet}}, {{_base_.faster_rcnn}}, {{_base_.yolov3}}],
    methods=_methods,
)
