# Seed 001 Table 3 layout for classification on the embedded default (32x32 shapes):
# Baseline / +LCP / +ACP, the seed 003 rows (Stage II = CC+FC with the KL loss on the
# source ANN; Stage I = QC fine-tuning for T=16, configs/two_stage/) and a QCFS-trained
# classifier (seed 002) at T = 4 ... 64, through the same SpikingBackbone as detection.
_base = dict(threshold='mmse', channel_wise=True, shift='potential')
_fc = dict(calib='cc+fc', fc_iters=40, fc_lr=5e-4, fc_loss='kl', fc_patience=3)
_name = 'ResNet-18n classifier'
_stage1 = {_name: dict(config='configs/two_stage/resnet18n_qc-ft-T16_synth-cls.py',
                       checkpoint='checkpoints/cls_resnet18n_qc-ft-T16_synth.pth')}
benchmark = dict(
    name='seed001_table3_synth_cls',
    seed=0,
    T=[4, 8, 16, 32, 64],
    calib_images=128,
    calib_batch_size=64,
    val_images=None,
    # the held-out classification test split (600 images) is reported
    detectors=[dict(name=_name,
                    config='configs/cls/resnet18n_8xb64_synth-cls.py',
                    checkpoint='checkpoints/cls_resnet18n_synth.pth')],
    methods=[
        dict(name='Baseline', conversion=dict(**_base)),
        dict(name='+LCP', conversion=dict(**_base, calib='lcp')),
        dict(name='+ACP', conversion=dict(**_base, calib='lcp+acp', weight_iters=200,
                                          weight_lr=1e-4, weight_batch=32,
                                          potential_granularity='element')),
        dict(name='Stage II (CC+FC, KL)', conversion=dict(**_base, **_fc)),
        dict(name='Stage I only', conversion=dict(**_base), sources=_stage1),
        dict(name='Stage I + II', conversion=dict(**_base, **_fc), sources=_stage1),
        dict(name='QCFS L=8 (seed 002)', conversion=dict(**_base), sources={_name: dict(
            config='configs/two_stage/resnet18n_qcfs-L8_synth-cls.py',
            checkpoint='checkpoints/cls_resnet18n_qcfs-L8_synth.pth')}),
    ],
)
# targets (snn_det.analysis.target_checks)
targets = [
    dict(what='classifier, best three methods at T=16', target='best >= 98% of the ANN top-1',
         check=dict(type='best_ratio_at', T=16, bound=0.98)),
]
