# Real aerial images (issue 42): the tree-crown detectors of configs/neon/, trained from
# scratch on tiles of one NEON photograph, converted and evaluated on held-out photographs
# of other plots and sites: as 400 x 400 tiles ('<detector>') and whole ('<detector>
# (whole)': 1249 x 1035, 400 x 400, 400 x 400, one per batch).  Calibration uses 16 train
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
benchmark = dict(
    name='neon_trees',
    seed=0,
    T=[8, 16, 32, 64],
    calib_images=16,
    calib_batch_size=8,
    detectors=[_dets[0], _whole_dets[0], _dets[1], _whole_dets[1], _dets[2], _whole_dets[2]],
    methods=[
        dict(name='Baseline', conversion=dict(**_base)),
        dict(name='+LCP', conversion=dict(**_base, calib='lcp')),
        dict(name='+ACP', conversion=dict(**_base, **_acp)),
        dict(name='+LCP (full)', scope='full', conversion=dict(**_base, calib='lcp'),
             # Faster R-CNN's full scope runs RoIAlign and the FCs per proposal per step
             T={'Faster R-CNN R18n': [8, 16, 32], 'Faster R-CNN R18n (whole)': [8, 16, 32]}),
    ],
    error_plot=dict(T=32, methods=['Baseline', '+LCP', '+ACP', '+LCP (full)'], images=8),
)
