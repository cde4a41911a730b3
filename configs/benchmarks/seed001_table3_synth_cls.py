# Seed 001 Table 3 layout for classification on the embedded default (32x32 shapes):
# Baseline / +LCP / +ACP and the seed 003 Stage II rows (CC, CC+FC with the KL loss)
# at T = 4 ... 64, through the same SpikingBackbone as detection.
_base = dict(threshold='mmse', channel_wise=True, shift='potential')
benchmark = dict(
    name='seed001_table3_synth_cls',
    seed=0,
    T=[4, 8, 16, 32, 64],
    calib_images=128,
    calib_batch_size=64,
    val_images=None,
    detectors=[dict(name='ResNet-18n classifier',
                    config='configs/cls/resnet18n_8xb64_synth-cls.py',
                    checkpoint='checkpoints/cls_resnet18n_synth.pth')],
    methods=[
        dict(name='Baseline', conversion=dict(**_base)),
        dict(name='+LCP', conversion=dict(**_base, calib='lcp')),
        dict(name='+ACP', conversion=dict(**_base, calib='lcp+acp', weight_iters=200,
                                          weight_lr=1e-4, weight_batch=32,
                                          potential_granularity='element')),
        dict(name='Stage II (CC+FC, KL)', conversion=dict(**_base, calib='cc+fc', fc_iters=40,
                                                         fc_lr=5e-4, fc_loss='kl',
                                                         fc_patience=3)),
    ],
)
