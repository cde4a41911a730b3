# Seed 003 Stage I for the RetinaNet with spikes into every synapse (issue 45): as
# retinanet_r18n_fpn_qc-ft-T16_full_synth.py (QC activations on every site of the full
# scope, 4 epochs, the last one kept), plus signed QC activations (Eq. 12 on the identity,
# clip to [-theta, theta]) on FPN's 3 laterals and 5 outputs, the sites --spiking-fpn adds.
# Then Stage II:
#   python tools/convert.py configs/two_stage/retinanet_r18n_fpn_qc-ft-T16_full_spiking-fpn_synth.py \
#       checkpoints/retinanet_r18n_fpn_qc-ft-T16_full_spiking-fpn_synth.pth --T 16 --calib cc+fc
_base_ = ['./retinanet_r18n_fpn_qc-ft-T16_full_synth.py']
model = dict(backbone=dict(conversion=dict(spiking_fpn=True)))
