# Seed 002 on the embedded default classifier: the ReLUs of the trained ResNet-18n become
# QCFS activations (Eq. 15, L=8, trainable lambda, gradients of Eq. 17), fine-tuned with the
# classifier's own loss.  Converting sets theta = lambda and v(0) = theta/2 (Theorem 2):
#   python tools/convert.py configs/two_stage/resnet18n_qcfs-L8_synth-cls.py \
#       checkpoints/cls_resnet18n_qcfs-L8_synth.pth --T 8 16 32
_base_ = ['./resnet18n_qc-ft-T16_synth-cls.py']
model = dict(backbone=dict(act_cfg=dict(_delete_=True, type='QCFS', L=8)))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
