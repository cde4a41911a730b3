# CPU-sized schedule for the tree-crown detectors, trained from scratch (no pretrained
# weights): a fixed number of epochs, the last one kept (no selection on held-out data).
max_epochs = 24
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=0.05, convert_to_iter_based=True)
]
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=10, norm_type=2))
custom_imports = dict(imports=['snn_det'], allow_failed_imports=False)
