# SpikingJelly's LocalThresholdBalancingRecipe (Bu et al., CVPR 2025) run as its own ImageNet
# example runs it, beside snn-det's +LCP: the peers benchmark (configs/benchmarks/peers.py)
# gives the recipe the calibration every method gets there (16 detector / 128 classifier
# images in 2 batches), i.e. 2 threshold updates from zero, and reads out every step; its
# example (spikingjelly/activation_based/ann2snn/examples/imagenet_resnet18_ltb.py)
# calibrates on 50,000 images (~780 updates of 64) and reads out from the delayed start
# step that SpikingJelly's estimate_delay_start chooses (--delay-start auto).  Here: the
# same calibration images cycled to 400 updates, delay_start='auto'.
#   python tools/benchmark.py configs/benchmarks/peers_ltb.py
# CPU budget (a 2-core CPU): the classifier (val, 600 images) and RetinaNet R18n (test, 400
# images) at T = 8 and 32, ~35 CPU-minutes.
_mmse = dict(threshold='mmse', channel_wise=True, shift='potential')
benchmark = dict(
    name='peers_ltb',
    seed=0,
    T=[8, 32],
    calib_images=16,
    calib_batch_size=8,
    split='test',
    detectors=[
        dict(name='ResNet-18n classifier', config='configs/cls/resnet18n_8xb64_synth-cls.py',
             checkpoint='checkpoints/cls_resnet18n_synth.pth', calib_images=128,
             calib_batch_size=64, split='val'),
        dict(name='RetinaNet R18n', config='configs/synth/retinanet_r18n_fpn_12e_synth.py',
             checkpoint='checkpoints/retinanet_r18n_fpn_12e_synth.pth'),
    ],
    methods=[
        dict(name='+LCP', conversion=dict(**_mmse, calib='lcp')),
        dict(name='SpikingJelly LTB (400 updates, delayed readout)',
             peer=dict(type='spikingjelly', recipe='ltb', updates=400, delay_start='auto')),
    ],
)
targets = [
    dict(what="snn-det's +LCP against SpikingJelly's LTB run as its example runs it",
         target='ahead at every T, on every network',
         check=dict(type='at_least_peers', ours=['+LCP'])),
]
