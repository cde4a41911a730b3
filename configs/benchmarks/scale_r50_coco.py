# Memory and time of conversion at seed 001's COCO scale: ResNet-50 detectors at 800x1333,
# T = 32 and 256, 2 to 32 calibration images (the paper uses 128).
#
# It measures MEMORY AND TIME, NOT ACCURACY: the detectors are full-width R50-FPN RetinaNet
# and Faster R-CNN with random weights (seeded), and the images are the generated shapes of
# the embedded default put in the COCO layout, resized by the configs' own test pipeline to
# 1333x800 (keep_ratio off, so every image is 800x1333, padded to 800x1344).  Nothing is downloaded.
#
#   python tools/scale_benchmark.py configs/benchmarks/scale_r50_coco.py [--runs 0 1 ...]
#
# Each run is a separate process (its peak RSS is the kernel's count for that process).
# Results: docs/results/scale_r50_coco/results.{json,md}; a rerun of some runs keeps the rest.
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
    # calibration runs: images x T; max_sites profiles only the first sites (the
    # stride-4 stage, where the largest tensors and the peak memory are)
    runs=[
        dict(kind='convert', images=2, T=32),
        dict(kind='convert', images=8, T=32),
        dict(kind='convert', images=32, T=32),
        dict(kind='convert', images=8, T=256),
        # the same 8 and 32 images with a RAM budget below what 8 images keep: what is over
        # it goes to files under work_dirs/, so RAM stays flat in the number of images
        dict(kind='convert', images=8, T=32, cache_budget='128M'),
        dict(kind='convert', images=32, T=32, cache_budget='128M'),
        # simulation of one 800x1333 image by the converted detector (mmdet's test_step)
        dict(kind='simulate', images=1, T=32),
        dict(kind='simulate', images=1, T=256),
        # the lower bound of LCP's two passes on one image: a plain simulation of the
        # converted backbone and of a copy whose neurons cost nothing, against T ANN forwards
        dict(kind='bound', images=1, T=32),
        # the same 2 images in chunks of 4 steps instead of 8 (--chunk-size 4): the
        # calibration's working set per chunk halves, its cache does not change
        dict(kind='convert', images=2, T=32, chunk_size=4),
        # issue 12's T=256 bound with 8 images, at the budget the T=32 rows show flat in
        # the number of images (the spikes beyond it go to files: ~0.75 GiB per image)
        dict(kind='convert', images=8, T=256, cache_budget='128M'),
        # calibration in channels-last layout (--calib-channels-last; not bit-identical to
        # the default layout): 2 and 8 images, timed against both floors (the ANN as
        # MMDetection runs it, and the ANN run channels last too)
        dict(kind='convert', images=2, T=32, cache_budget='128M', channels_last=True),
        dict(kind='convert', images=8, T=32, cache_budget='128M', channels_last=True),
    ],
)
