# Faster R-CNN with a narrow ResNet-50 (bottleneck blocks, base_channels=16: stage outputs
# 64/128/256/512) + FPN on the embedded default: 49 spiking sites, the depth of seed 001's
# Table 4 (issue 14).  Same schedule as the R18n model, 8 epochs: about 100 min of wall time on
# this 2-core CPU beside other jobs; its checkpoint is not shipped yet (see issue 14).
_base_ = ['./faster-rcnn_r18n_fpn_8e_synth.py']
model = dict(
    backbone=dict(depth=50, base_channels=16),
    neck=dict(in_channels=[64, 128, 256, 512]))
