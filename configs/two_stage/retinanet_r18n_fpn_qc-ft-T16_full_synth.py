# Seed 003 Stage I for a fully spiking RetinaNet (issue 13): as
# retinanet_r18n_fpn_qc-ft-T16_synth.py, but QC activations on every site of the full
# scope (backbone, FPN, RetinaHead towers at every level), so Stage II's targets and the
# thresholds of the head come from the QC-ANN too.  Then:
#   python tools/convert.py configs/two_stage/retinanet_r18n_fpn_qc-ft-T16_full_synth.py \
#       checkpoints/retinanet_r18n_fpn_qc-ft-T16_full_synth.pth --T 16 --calib cc+fc
_base_ = ['./retinanet_r18n_fpn_qc-ft-T16_synth.py']
model = dict(type='SpikingDetector', detector_type='RetinaNet', backbone=dict(scope='full'))
