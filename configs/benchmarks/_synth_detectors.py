# The detectors of the embedded default (trained here, shipped in checkpoints/).
retinanet = dict(name='RetinaNet R18n', config='configs/synth/retinanet_r18n_fpn_12e_synth.py',
                 checkpoint='checkpoints/retinanet_r18n_fpn_12e_synth.pth')
faster_rcnn = dict(name='Faster R-CNN R18n', config='configs/synth/faster-rcnn_r18n_fpn_8e_synth.py',
                   checkpoint='checkpoints/faster-rcnn_r18n_fpn_8e_synth.pth')
yolov3 = dict(name='YOLOv3 D53n', config='configs/synth/yolov3_d53n_8e_synth.py',
              checkpoint='checkpoints/yolov3_d53n_8e_synth.pth.gz')
# ResNet-50 depth (bottlenecks, base_channels=16): 49 spiking sites (issue 14)
faster_rcnn_r50n = dict(name='Faster R-CNN R50n',
                        config='configs/synth/faster-rcnn_r50n_fpn_8e_synth.py',
                        checkpoint='checkpoints/faster-rcnn_r50n_fpn_8e_synth.pth.gz')
retinanet_r50n = dict(name='RetinaNet R50n', config='configs/synth/retinanet_r50n_fpn_8e_synth.py',
                      checkpoint='checkpoints/retinanet_r50n_fpn_8e_synth.pth')
