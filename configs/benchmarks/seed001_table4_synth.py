# Seed 001 Table 4 layout on the embedded default: Baseline / +LCP / +ACP at each T
# (T = 16, 32, 64 and 16 calibration images to fit a 2-core CPU; the paper uses 32..256),
# with conversion times (Table 5), per-layer relative error (Fig. 2/5) and an evaluation
# at another input scale than the calibration images (channel-mean potentials).
_base_ = ['./_synth_detectors.py']
_base = dict(threshold='mmse', channel_wise=True, shift='potential')
benchmark = dict(
    name='seed001_table4_synth',
    seed=0,
    T=[16, 32, 64],
    calib_images=16,
    calib_batch_size=8,
    val_images=100,
    detectors=[{{_base_.retinanet}}, {{_base_.faster_rcnn}}, {{_base_.yolov3}}],
    methods=[
        dict(name='Baseline', conversion=dict(**_base)),
        dict(name='+LCP', conversion=dict(**_base, calib='lcp')),
        dict(name='+ACP', conversion=dict(**_base, calib='lcp+acp', weight_iters=50,
                                          weight_lr=1e-4, weight_batch=8)),
    ],
    error_plot=dict(T=32, methods=['Baseline', '+LCP', '+ACP'], images=8),
    rescaled=dict(scale=(256, 256), T=[32], methods=['Baseline', '+LCP', '+ACP']),
)
