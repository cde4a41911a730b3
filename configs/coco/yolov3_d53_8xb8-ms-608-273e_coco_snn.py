# YOLOv3 Darknet-53 on COCO with a spiking Darknet (signed neurons for Leaky-ReLU).
_base_ = ['mmdet::yolo/yolov3_d53_8xb8-ms-608-273e_coco.py']
custom_imports = dict(imports=['snn_det'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone={{_base_.model.backbone}},
    T=32,
    chunk_size=8,
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential', calib=['bias'])))
