# snn-det's methods in the peer comparisons (configs/benchmarks/peers.py, peers_ltb.py):
# every method the protocol compares (issue 46), with the options of the seeds' tables
# (seed001_table4_synth.py / seed001_table3_synth_cls.py for +ACP, seed003_tableX_synth.py
# for Stage I + II): MMSE thresholds per channel and the ClipRound shift; weight
# calibration and BPTT take the classifier's own options (BPTT: KL on its logits, MSE on
# detection features).  Stage I + II converts the QC fine-tuned ANN (one per T for
# RetinaNet; the classifier has one, L = 16, for both T).
classifier = dict(name='ResNet-18n classifier', config='configs/cls/resnet18n_8xb64_synth-cls.py',
                  checkpoint='checkpoints/cls_resnet18n_synth.pth', calib_images=128,
                  calib_batch_size=64)     # its held-out test split (600 images)
retinanet = dict(name='RetinaNet R18n', config='configs/synth/retinanet_r18n_fpn_12e_synth.py',
                 checkpoint='checkpoints/retinanet_r18n_fpn_12e_synth.pth')
_mmse = dict(threshold='mmse', channel_wise=True, shift='potential')
_cls = 'ResNet-18n classifier'
_nets = [_cls, 'RetinaNet R18n']      # YOLOv3 D53n: no peer converts it (Leaky-ReLU)
_qc = 'configs/two_stage/retinanet_r18n_fpn_qc-ft-T{}_synth.py'
_qc_ckpt = 'checkpoints/retinanet_r18n_fpn_qc-ft-T{}_synth.pth'
baseline = dict(name='Baseline', conversion=dict(**_mmse), detectors=_nets)
lcp = dict(name='+LCP', conversion=dict(**_mmse, calib='lcp'), detectors=_nets)
acp = dict(name='+ACP', detectors=_nets,
           conversion=dict(**_mmse, calib='lcp+acp', weight_iters=200, weight_lr=1e-5,
                           weight_batch=8),
           conversion_for={_cls: dict(weight_lr=1e-4, weight_batch=32,
                                      potential_granularity='element')})
stage_1_2 = dict(
    name='Stage I + II', detectors=_nets,
    conversion=dict(**_mmse, calib='cc+fc', fc_iters=40, fc_batch=2, fc_lr=1e-4,
                    fc_patience=10, fc_loss='mse'),
    conversion_for={_cls: dict(fc_batch=None, fc_lr=5e-4, fc_patience=3, fc_loss='kl')},
    sources={_cls: dict(config='configs/two_stage/resnet18n_qc-ft-T16_synth-cls.py',
                        checkpoint='checkpoints/cls_resnet18n_qc-ft-T16_synth.pth'),
             'RetinaNet R18n': {T: dict(config=_qc.format(T), checkpoint=_qc_ckpt.format(T))
                                for T in (8, 32)}})
ours = ['Baseline', '+LCP', '+ACP', 'Stage I + II']
