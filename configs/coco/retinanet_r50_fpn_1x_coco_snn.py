# RetinaNet R50-FPN 1x on COCO with a spiking ResNet-50 backbone (seed 001 Table 4).
# Use with the model-zoo checkpoint, e.g.
#   python tools/convert.py configs/coco/retinanet_r50_fpn_1x_coco_snn.py \
#       retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth --T 32 --calib acp
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['snn_det'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True,
    type='SpikingBackbone',
    backbone={{_base_.model.backbone}},
    T=32,
    chunk_size=8,
    conversion=dict(threshold='mmse', channel_wise=True, shift='potential', calib=['bias'])))
