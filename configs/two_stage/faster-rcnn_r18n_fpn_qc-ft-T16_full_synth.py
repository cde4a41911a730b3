# Seed 003 Stage I for a fully spiking Faster R-CNN (issue 13): QC fine-tuning of the trained
# Faster R-CNN R18n for T=16 with QC activations g_{theta,T} (Eq. 12/15) on every site of
# the full scope: the backbone's, the RPN's rpn_conv ReLU at each FPN level and the RoI
# head's shared-FC ReLUs.  mmdet's own Faster R-CNN loss trains it (RPN on its anchors, the
# RoI head on mmdet's sampled proposals); thresholds start at the 99.9th percentile of the
# ANN's activations (QCThresholdInitHook); lr 1e-4 for 4 epochs, as the RetinaNet recipe
# (retinanet_r18n_fpn_qc-ft-T8_synth.py).  Not trained for a results table yet.  Then:
#   python tools/train.py configs/two_stage/faster-rcnn_r18n_fpn_qc-ft-T16_full_synth.py
#   python tools/convert.py configs/two_stage/faster-rcnn_r18n_fpn_qc-ft-T16_full_synth.py \
#       work_dirs/faster-rcnn_r18n_fpn_qc-ft-T16_full_synth/epoch_4.pth --T 16 --calib cc+fc
_base_ = ['../synth/faster-rcnn_r18n_fpn_8e_synth.py']
T = 16
model = dict(
    type='SpikingDetector',
    detector_type='FasterRCNN',
    backbone=dict(
        _delete_=True,
        type='SpikingBackbone',
        backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                      out_indices=(0, 1, 2, 3), frozen_stages=-1,
                      norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                      style='pytorch', init_cfg=None),
        T=T,
        scope='full',
        act_cfg=dict(type='QCActivation', T=T, p=1.0),
        conversion=dict(threshold='mmse', channel_wise=True, shift='potential')))
load_from = 'checkpoints/faster-rcnn_r18n_fpn_8e_synth.pth'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=64, percentile=99.9)]
epochs = 4
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
default_hooks = dict(checkpoint=dict(interval=epochs, save_best=None))
