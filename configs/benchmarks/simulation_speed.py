# Simulation speed of the spiking backbones of the embedded default (issue 17).
#
#   python tools/speed_benchmark.py configs/benchmarks/simulation_speed.py
#
# Per shipped detector and thread count: the ANN backbone's forward time on a batch of
# generated val images at 320x320, the SNN's time at each T with its ratio to
# T x (ANN backbone forward), the same with the Python step loop instead of the fused
# kernel, the peak memory of the simulation against T, and the same converted network
# simulated with SpikingJelly's multi-step IFNode (soft reset; layer-wise thresholds,
# the only ones its IFNode takes as a scalar), its outputs checked identical.
# Also the fully spiking detector (backbone, neck and head, issue 13; Faster R-CNN: RPN and
# RoI head in two phases around the proposals) against mmdet's ANN detector forward.
# Results: docs/results/simulation_speed/results.{json,md}.
_base_ = ['./_synth_detectors.py']
simulation_speed = dict(
    name='simulation_speed',
    seed=0,
    detectors=[{{_base_.retinanet}}, {{_base_.faster_rcnn}}, {{_base_.yolov3}}],
    batch_size=4,                 # generated val images at the configs' 320x320
    T=[8, 32, 128],
    chunk_size=8,
    threads=[1, 2],
    repeats=3,                    # median of this many timed runs (after one warm-up)
    python_loop_T=32,             # the Python step loop is timed at this T
    conversion=dict(threshold='max', channel_wise=True, shift='potential', calib=[]),
    calib_images=4,
    # issue 13: the fully spiking detector (scope full) against mmdet's ANN detector forward
    # (relu_neuron: the seeds' IF neurons, and signed ones at ReLU sites, --relu-neuron signed)
    full_scope=dict(detectors=['RetinaNet R18n', 'Faster R-CNN R18n', 'YOLOv3 D53n'], T=[8, 32],
                    relu_neuron=['if', 'signed']),
    # the same nets simulated in channels-last layout (tools/test.py --channels-last)
    channels_last=True,
    spikingjelly=dict(T=[8, 32], conversion=dict(threshold='max', channel_wise=False,
                                                 shift='potential', calib=[])),
)
