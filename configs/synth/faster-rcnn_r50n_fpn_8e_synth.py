# Faster R-CNN with a narrow ResNet-50 (bottleneck blocks, base_channels=16: stage outputs
# 64/128/256/512) + FPN on the embedded default: 49 spiking sites, the depth of seed 001's
# Table 4 (issue 14).  Same schedule as the R18n model, 8 epochs: 83 min of wall time on
# this 2-core CPU beside 2-3 other jobs; shipped gzip-compressed (10.1 MiB as float32) as
# checkpoints/faster-rcnn_r50n_fpn_8e_synth.pth.gz.
_base_ = ['./faster-rcnn_r18n_fpn_8e_synth.py']
model = dict(
    backbone=dict(depth=50, base_channels=16),
    neck=dict(in_channels=[64, 128, 256, 512]))
