# SpikingJelly's LocalThresholdBalancingRecipe (Bu et al., CVPR 2025) run as its own ImageNet
# example runs it, beside snn-det's +LCP: the peers benchmark (configs/benchmarks/peers.py)
# gives the recipe the calibration every method gets there (16 detector / 128 classifier
# images in 2 batches), i.e. 2 threshold updates from zero, and reads out every step; its
# example (spikingjelly/activation_based/ann2snn/examples/imagenet_resnet18_ltb.py)
# calibrates on 50,000 images (~780 updates of 64) and reads out from the delayed start
# step that SpikingJelly's estimate_delay_start chooses (--delay-start auto).  Here: the
# same calibration images cycled to 400 updates, delay_start='auto'.
#   python tools/benchmark.py configs/benchmarks/peers_ltb.py
# snn-det's rows are every method the protocol compares (issue 46): +LCP, +ACP (seed 001)
# and Stage I + II (seed 003: the QC fine-tuned ANN, then CC + BPTT calibration; MSE on
# detection features, KL on a classifier's logits), with the options of the seeds' tables
# (configs/benchmarks/seed001_table4_synth.py, seed001_table3_synth_cls.py,
# seed003_tableX_synth.py).  The classifier has one QC model (L = 16) for both T.
# CPU budget (a 2-core CPU): the classifier (val, 600 images) and RetinaNet R18n (test, 400
# images) at T = 8 and 32, ~50 CPU-minutes.
_mmse = dict(threshold='mmse', channel_wise=True, shift='potential')
_cls = 'ResNet-18n classifier'
_acp = dict(calib='lcp+acp', weight_iters=200, weight_lr=1e-5, weight_batch=8)
_acp_cls = dict(weight_lr=1e-4, weight_batch=32, potential_granularity='element')
_fc = dict(calib='cc+fc', fc_iters=40, fc_batch=2, fc_lr=1e-4, fc_patience=10, fc_loss='mse')
_fc_cls = dict(fc_batch=None, fc_lr=5e-4, fc_patience=3, fc_loss='kl')


def _qc(name, T):
    return dict(config=f'configs/two_stage/{name}_qc-ft-T{T}_synth.py',
                checkpoint=f'checkpoints/{name}_qc-ft-T{T}_synth.pth')


benchmark = dict(
    name='peers_ltb',
    seed=0,
    T=[8, 32],
    calib_images=16,
    calib_batch_size=8,
    split='test',
    detectors=[
        dict(name=_cls, config='configs/cls/resnet18n_8xb64_synth-cls.py',
             checkpoint='checkpoints/cls_resnet18n_synth.pth', calib_images=128,
             calib_batch_size=64, split='val'),
        dict(name='RetinaNet R18n', config='configs/synth/retinanet_r18n_fpn_12e_synth.py',
             checkpoint='checkpoints/retinanet_r18n_fpn_12e_synth.pth'),
    ],
    methods=[
        dict(name='+LCP', conversion=dict(**_mmse, calib='lcp')),
        dict(name='+ACP', conversion=dict(**_mmse, **_acp), conversion_for={_cls: _acp_cls}),
        dict(name='Stage I + II', conversion=dict(**_mmse, **_fc),
             conversion_for={_cls: _fc_cls},
             sources={_cls: dict(config='configs/two_stage/resnet18n_qc-ft-T16_synth-cls.py',
                                 checkpoint='checkpoints/cls_resnet18n_qc-ft-T16_synth.pth'),
                      'RetinaNet R18n': {T: _qc('retinanet_r18n_fpn', T) for T in (8, 32)}}),
        dict(name='SpikingJelly LTB (400 updates, delayed readout)',
             peer=dict(type='spikingjelly', recipe='ltb', updates=400, delay_start='auto')),
    ],
)
targets = [
    dict(what="snn-det's best method against SpikingJelly's LTB run as its example runs it",
         target='ahead at every T, on every network',
         check=dict(type='at_least_peers', ours=['+LCP', '+ACP', 'Stage I + II'])),
]
