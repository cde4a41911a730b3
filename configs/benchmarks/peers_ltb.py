# SpikingJelly's LocalThresholdBalancingRecipe (Bu et al., CVPR 2025) run as its own ImageNet
# example runs it, beside snn-det's +LCP: the peers benchmark (configs/benchmarks/peers.py)
# gives the recipe the calibration every method gets there (16 detector / 128 classifier
# images in 2 batches), i.e. 2 threshold updates from zero, and reads out every step; its
# example (spikingjelly/activation_based/ann2snn/examples/imagenet_resnet18_ltb.py)
# calibrates on 50,000 images (~780 updates of 64) and reads out from the delayed start
# step that SpikingJelly's estimate_delay_start chooses (--delay-start auto).  Here: the
# same calibration images cycled to 400 updates, delay_start='auto'.
#   python tools/benchmark.py configs/benchmarks/peers_ltb.py
# snn-det's rows: +LCP, +ACP and Stage I + II (configs/benchmarks/_peer_comparison.py).
# CPU budget (a 2-core CPU): the classifier (test, 600 images) and RetinaNet R18n (test, 400
# images) at T = 8 and 32, ~50 CPU-minutes.
_base_ = ['./_peer_comparison.py']
benchmark = dict(
    name='peers_ltb',
    seed=0,
    T=[8, 32],
    calib_images=16,
    calib_batch_size=8,
    split='test',
    detectors=[{{_base_.classifier}}, {{_base_.retinanet}}],
    methods=[
        {{_base_.lcp}},
        {{_base_.acp}},
        {{_base_.stage_1_2}},
        dict(name='SpikingJelly LTB (400 updates, delayed readout)',
             peer=dict(type='spikingjelly', recipe='ltb', updates=400, delay_start='auto')),
    ],
)
targets = [
    dict(what="snn-det's best method against SpikingJelly's LTB run as its example runs it",
         target='ahead at every T, on every network',
         check=dict(type='at_least_peers', ours={{_base_.ours}})),
]
