# Faster R-CNN R50-FPN 1x on COCO with a spiking ResNet-50 backbone (seed 001 Table 4).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['snn_det'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone={{_base_.model.backbone}},
    T=32,
    chunk_size=8,
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential', calib=['bias'])))
