# Memory and time of conversion at seed 001's COCO scale: ResNet-50 detectors at 800x1333,
# T = 32 and 256, 2 to 32 calibration images (the paper uses 128).
#
# It measures MEMORY AND TIME, NOT ACCURACY: the detectors are full-width R50-FPN RetinaNet
# and Faster R-CNN with random weights (seeded), and the images are the generated shapes of
# the embedded default put in the COCO layout, resized by the configs' own test pipeline to
# 1333x800 (keep_ratio off, so every image is 800x1333, padded to 800x1344).  Nothing is downloaded.
#
#   python tools/scale_benchmark.py configs/benchmarks/scale_r50_coco.py   # the committed table
#   python tools/scale_benchmark.py configs/benchmarks/scale_r50_coco.py --runs 5 6   # extra runs
#
# Each run is a separate process (its peak RSS is the kernel's count for that process).
# Results: docs/results/scale_r50_coco/results.{json,md}; a rerun of some runs keeps the rest.
_retina = ['RetinaNet R50']
scale_benchmark = dict(
    name='scale_r50_coco',
    seed=0,
    data=dict(root='data/scale_standin', num_images=32),
    detectors=[
        dict(name='RetinaNet R50', config='configs/coco/retinanet_r50_fpn_1x_coco_snn.py'),
        dict(name='Faster R-CNN R50', config='configs/coco/faster-rcnn_r50_fpn_1x_coco_snn.py'),
    ],
    # conversion of every run: MMSE thresholds per channel, ClipRound, LCP (seed 001 Table 4)
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential', calib='lcp'),
    calib_batch_size=1,
    chunk_size=8,
    cache_budget='2G',
    # The committed table holds runs 0-4 on RetinaNet R50 and run 0 on Faster R-CNN R50, all
    # at one commit: what a plain rerun runs (about 45 min on 2 cores).  Runs 0-2 use
    # DEFAULT OPTIONS, as tools/convert.py does without memory options: --memory-budget
    # auto (a quarter of the machine's RAM), the time chunk and the cache's RAM chosen
    # within it (``defaults=True`` ignores chunk_size / cache_budget).
    # max_sites calibrates only the first sites: the stride-4 stage, where the largest
    # tensors are (the full run 0 shows the peak there and at layer2.0).
    runs=[
        dict(kind='convert', images=2, T=32, defaults=True),
        dict(kind='convert', images=32, T=32, calib_batch_size=2, defaults=True, max_sites=4,
             detectors=_retina),
        dict(kind='convert', images=8, T=128, defaults=True, max_sites=4, detectors=_retina),
        # simulation of one 800x1333 image by the converted detector (mmdet's test_step)
        dict(kind='simulate', images=1, T=32, detectors=_retina),
        # the lower bound of LCP's two passes on one image: a plain simulation of the
        # converted backbone and of a copy whose neurons cost nothing, against T ANN forwards
        dict(kind='bound', images=1, T=32, detectors=_retina),
        # Not in the committed table (extra: run them with --runs 5 ...; each is 5 to 80 min
        # here; --detectors runs a run on other detectors than its own):
        # explicit options - a 128M cache budget, so RAM stays flat in the number of images
        # and the spike trains beyond it go to files (8 and 32 images; 8 at T=256), chunks
        # of 4 steps, channels-last calibration.
        dict(kind='convert', images=8, T=32, cache_budget='128M', extra=True),
        dict(kind='convert', images=32, T=32, cache_budget='128M', extra=True),
        dict(kind='convert', images=8, T=256, cache_budget='128M', extra=True),
        dict(kind='convert', images=2, T=32, chunk_size=4, extra=True),
        dict(kind='convert', images=2, T=32, cache_budget='128M', channels_last=True,
             extra=True),
        dict(kind='simulate', images=1, T=256, extra=True),
    ],
)
