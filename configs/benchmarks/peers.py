# Peers on the same networks (issue 46): the backbone of each embedded detector and of the
# classifier converted by other libraries' own recipes (snn_det.peers; docs/peers.md):
# SpikingJelly 2.0's ann2snn (rate coding with max / 99.9th-percentile normalisation, local
# threshold balancing) and sinabs 3.1's from_model, each run inside the same detector (same
# neck, head, data and metric) beside snn-det's Baseline, +LCP, +ACP and Stage I + II
# (configs/benchmarks/_peer_comparison.py), on the held-out test split, every image.  A
# network a peer cannot trace or express is one row with its error.  LTB is run as its
# own example runs it in configs/benchmarks/peers_ltb.py: with this table's calibration
# (2 batches) it would get 2 threshold updates from zero.
#   python tools/benchmark.py configs/benchmarks/peers.py [--detectors ...] [--T 8 16 ...]
_base_ = ['./_peer_comparison.py']
benchmark = dict(
    name='peers',
    seed=0,
    # CPU budget (a 2-core CPU): T = 8 and 32 (a peer simulates once to the largest T and
    # reads out each); not Faster R-CNN R18n (its backbone is RetinaNet's ResNet-18n: add
    # its entry back to rerun it, ~25 CPU-minutes on 400 images here); YOLOv3 D53n only
    # for the peers' rows (none converts its Leaky-ReLU Darknet; snn-det's rows for it
    # would cost ~30 CPU-minutes)
    T=[8, 32],
    calib_images=16,          # from the train split, the same seeded images for every method
    calib_batch_size=8,
    split='test',             # the held-out test splits, every image (400; classifier 600)
    detectors=[
        {{_base_.classifier}},
        {{_base_.retinanet}},
        dict(name='YOLOv3 D53n', config='configs/synth/yolov3_d53n_8e_synth.py',
             checkpoint='checkpoints/yolov3_d53n_8e_synth.pth.gz'),
    ],
    methods=[
        {{_base_.baseline}},
        {{_base_.lcp}},
        {{_base_.acp}},
        {{_base_.stage_1_2}},
        dict(name='SpikingJelly rate (max)',
             peer=dict(type='spikingjelly', recipe='rate', mode='max')),
        dict(name='SpikingJelly rate (99.9%)',
             peer=dict(type='spikingjelly', recipe='rate', mode='99.9%')),
        dict(name='sinabs from_model', peer=dict(type='sinabs')),
    ],
)
# targets (snn_det.analysis.target_checks), judged on the intervals
targets = [
    dict(what="snn-det's best method (Baseline, +LCP, +ACP, Stage I + II) against every peer",
         target='ahead of every peer at every T, on every network a peer converts',
         check=dict(type='at_least_peers', ours={{_base_.ours}})),
]
