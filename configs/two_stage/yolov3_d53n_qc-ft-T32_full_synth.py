# Seed 003 Stage I for a fully spiking YOLOv3 (issue 13; the seed's own setting, Table X):
# as yolov3_d53n_qc-ft-T32_synth.py, but signed QC activations (Eq. 22) on every site of
# the full scope (Darknet, YOLOV3Neck and the head's convolutions before the prediction
# convolutions), so the thresholds of the neck and head come from the QC-ANN too.  Then:
#   python tools/convert.py configs/two_stage/yolov3_d53n_qc-ft-T32_full_synth.py \
#       checkpoints/yolov3_d53n_qc-ft-T32_full_synth.pth.gz --T 32 --calib cc+fc
_base_ = ['./yolov3_d53n_qc-ft-T32_synth.py']
model = dict(type='SpikingDetector', detector_type='YOLOV3', backbone=dict(scope='full'))
