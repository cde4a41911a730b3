# Seed 003 Stage I for YOLOv3-Darknet: QC fine-tuning of the trained YOLOv3 for T=8.
# Leaky-ReLU sites use the signed QC function clip(1/theta [LeakyReLU(x)]_{theta/T}, -1, 1)
# (Eq. 22), thresholds start at the 99.9th percentile of the ANN's activations
# (QCThresholdInitHook), and the whole detector is fine-tuned with its own loss at lr 1e-4
# for 4 epochs with quantization noise p=1 (the RetinaNet recipe; session 2's 2 epochs with
# p=0.1 gave a QC-ANN of val mAP 0.345).  The -T4 / -T16 / -T32 configs change T only.
# Then convert (Stage II):
#   python tools/convert.py configs/two_stage/yolov3_d53n_qc-ft-T8_synth.py \
#       checkpoints/yolov3_d53n_qc-ft-T8_synth.pth.gz --T 8 --calib cc+fc
_base_ = ['../synth/yolov3_d53n_8e_synth.py']
T = 8
p = 1.0
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone=dict(type='ScaledDarknet', widen_factor=0.25, stage_blocks=(1, 2, 4, 4, 2),
                  out_indices=(3, 4, 5), norm_eval=True),
    T=T,
    act_cfg=dict(type='QCActivation', T=T, p=p),
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential')))
load_from = 'checkpoints/yolov3_d53n_8e_synth.pth.gz'
custom_hooks = [dict(type='QCThresholdInitHook', num_images=64, percentile=99.9)]
epochs = 4
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs,
                        T_max=epochs, eta_min_ratio=0.1, convert_to_iter_based=True)]
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
default_hooks = dict(checkpoint=dict(interval=epochs))
