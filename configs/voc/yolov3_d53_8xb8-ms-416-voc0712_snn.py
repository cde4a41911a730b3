# YOLOv3 Darknet-53 on PASCAL VOC 07+12 (test: VOC2007 test) with a spiking Darknet,
# for the seed 003 Table X setting (AP@0.5:0.95 there; VOCMetric here reports mAP@0.5,
# add a CocoMetric over VOC annotations converted with mmdet's pascal_voc.py for 0.5:0.95).
_base_ = ['mmdet::yolo/yolov3_d53_8xb8-ms-416-273e_coco.py']
custom_imports = dict(imports=['snn_det'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='SpikingBackbone',
        backbone={{_base_.model.backbone}},
        T=32,
        chunk_size=8,
        conversion=dict(threshold='mmse', channel_wise=True, shift='potential',
                        calib=['bias'])),
    bbox_head=dict(num_classes=20))
dataset_type = 'VOCDataset'
data_root = 'data/VOCdevkit/'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(416, 416), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(type=dataset_type, data_root=data_root,
                 ann_file='VOC2007/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2007/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                 pipeline={{_base_.train_pipeline}}),
            dict(type=dataset_type, data_root=data_root,
                 ann_file='VOC2012/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2012/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                 pipeline={{_base_.train_pipeline}})
        ]))
val_dataloader = dict(
    dataset=dict(_delete_=True, type=dataset_type, data_root=data_root,
                 ann_file='VOC2007/ImageSets/Main/test.txt',
                 data_prefix=dict(sub_data_root='VOC2007/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
