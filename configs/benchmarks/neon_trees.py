# Real aerial images (issue 42): the tree-crown detectors of configs/neon/, trained from
# scratch on tiles of one NEON photograph, converted and evaluated on held-out photographs
# of other plots and sites: as 400 x 400 tiles ('<detector>') and whole ('<detector>
# (whole)': 1249 x 1035, 400 x 400, 400 x 400, one per batch).  Calibration uses 8 train
# tiles only (the train dataloader through the test pipeline); the channel-mean potentials
# calibrated on 400 x 400 tiles are used as they are for the whole images.  Each
# '(whole)' detector is the same checkpoint, calibrated again on the same seeded train
# tiles (the benchmark converts per detector), evaluated on test_whole.
# Data: `python tools/make_data.py --dataset neon-trees` (docs/neon_trees.md); run with
# `python tools/benchmark.py configs/benchmarks/neon_trees.py --no-data`.
# The full scope runs +LCP, chosen beforehand (ACP's full-scope weight calibration costs
# 5-10x more; no method is chosen on these test images).
_neon = 'configs/neon/'
_whole = {
    'test_dataloader.dataset.ann_file': 'annotations/instances_test_whole.json',
    'test_dataloader.dataset.data_prefix.img': 'test_whole/',
    'test_dataloader.batch_size': 1,
    'test_evaluator.ann_file': 'data/neon_trees/annotations/instances_test_whole.json',
}
retinanet = dict(name='RetinaNet R18n', config=_neon + 'retinanet_r18n_fpn_24e_neon-trees.py',
                 checkpoint='checkpoints/retinanet_r18n_fpn_24e_neon-trees.pth')
faster_rcnn = dict(name='Faster R-CNN R18n',
                   config=_neon + 'faster-rcnn_r18n_fpn_24e_neon-trees.py',
                   checkpoint='checkpoints/faster-rcnn_r18n_fpn_24e_neon-trees.pth')
yolov3 = dict(name='YOLOv3 D53n', config=_neon + 'yolov3_d53n_24e_neon-trees.py',
              checkpoint='checkpoints/yolov3_d53n_24e_neon-trees.pth.gz')
_dets = [retinanet, faster_rcnn, yolov3]
# the held-out whole photographs (instances_test_whole.json): split named, not switched
_whole_dets = [dict(d, name=d['name'] + ' (whole)', cfg_options=_whole, split='test')
               for d in _dets]
_base = dict(threshold='mmse', channel_wise=True, shift='potential')
_acp = dict(calib='lcp+acp', weight_iters=200, weight_lr=1e-5, weight_batch=8)
_names = [d['name'] for d in _dets]
_whole_names = [d['name'] for d in _whole_dets]
# CPU budget (2 cores): on the whole images only the T of the targets (T=32 for the
# backbone scope, T=16 for the full scope); +ACP at T=8..32 (its weight calibration costs
# ~3x +LCP's), for YOLOv3 D53n only at T=32 on the tiles (its 52 sites take ~9 CPU-minutes
# of weight calibration per T); the full scope at T=8 and 16, the T of its targets.
benchmark = dict(
    name='neon_trees',
    seed=0,
    T=[8, 16, 32, 64],
    calib_images=8,
    calib_batch_size=8,
    detectors=[d for pair in zip(_dets, _whole_dets) for d in pair],
    methods=[
        dict(name='Baseline', conversion=dict(**_base),
             T={n: [32] for n in _whole_names}),
        dict(name='+LCP', conversion=dict(**_base, calib='lcp'),
             T={n: [16, 32] for n in _whole_names}),
        dict(name='+ACP', conversion=dict(**_base, **_acp),
             detectors=[n for n in _names + _whole_names if n != 'YOLOv3 D53n (whole)'],
             T=dict({n: [8, 16, 32] for n in _names}, **{n: [32] for n in _whole_names},
                    **{'YOLOv3 D53n': [32]})),
        dict(name='+LCP (full)', scope='full', conversion=dict(**_base, calib='lcp'),
             T=dict({n: [8, 16] for n in _names}, **{n: [16] for n in _whole_names})),
    ],
    error_plot=dict(T=32, methods=['Baseline', '+LCP', '+ACP'], images=8),
)
# targets of issue 42 (snn_det.analysis.target_checks / reference_checks), judged on the
# held-out photographs' intervals; the full scope's method (+LCP) was fixed beforehand
targets = [
    dict(what='real images: the ANN against a model that predicts nothing (AP 0)',
         target='above 0 beyond its interval',
         check=dict(type='ann_above', bound=0.0)),
    dict(what='real images, backbone scope: best calibration at T=32',
         target='>= 97% of the ANN',
         check=dict(type='best_ratio_at', T=32, bound=0.97, detectors=_names,
                    backbone_scope=True)),
    dict(what='real images, backbone scope: best calibration at T=16',
         target='>= 90% of the ANN',
         check=dict(type='best_ratio_at', T=16, bound=0.90, detectors=_names,
                    backbone_scope=True)),
    dict(what='real images, full scope: best method at T=16 / T=8',
         target='>= 90% / >= 80% of the ANN',
         check=dict(type='best_full_ratios', bounds={16: 0.90, 8: 0.80}, detectors=_names)),
    dict(what='real images: whole photographs (potentials calibrated on tiles) against '
              'the tiles, T=32',
         target='SNN/ANN ratio within 2 points',
         check=dict(type='ratio_gap', T=32, detector=_whole_names, reference=_names,
                    bound=0.02)),
]
