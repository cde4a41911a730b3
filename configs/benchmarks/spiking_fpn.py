# Spikes into every synapse (issue 45): the fully spiking RetinaNet R18n (backbone, FPN and
# head, scope full) with neurons on FPN's currents (--spiking-fpn: signed
# neurons on its laterals and outputs, so that no convolution after the first layer takes
# analog input), +LCP at T = 8, 16 and 32 and seed 003's Stage I + II at T=16 (its QC model
# trained with the FPN sites), evaluated on the held-out test split (all 400 images) with
# the whole model's energy per image beside the ANN's (4.6 pJ/MAC, 0.9 pJ/SOP, counted on
# 2 calibration images; docs/deployment.md).  About 60 CPU-minutes here.
#   python tools/benchmark.py configs/benchmarks/spiking_fpn.py
_base_ = ['./_synth_detectors.py']
_lcp = dict(threshold='mmse', channel_wise=True, shift='potential', calib='lcp')
_fc = dict(fc_iters=40, fc_batch=2, fc_lr=1e-4, fc_patience=10, fc_loss='mse')
benchmark = dict(
    name='spiking_fpn',
    seed=0,
    T=[8, 16, 32],
    calib_images=16,
    calib_batch_size=8,
    energy=dict(images=2),
    detectors=[{{_base_.retinanet}}],
    # the same conversion without --spiking-fpn is '+LCP (full)' of seed001_table4_synth
    # (its energy: docs/results/deployment/energy.json)
    methods=[
        dict(name='+LCP (full, spiking FPN)', scope='full', conversion=dict(_lcp, spiking_fpn=True)),
        # seed 003 Stage I (QC fine-tuning with the FPN sites, 4 epochs, the last kept) +
        # Stage II (coarse + fine calibration), at the T it was trained for
        dict(name='Stage I + II (full, spiking FPN)', scope='full', T=[16],
             conversion=dict(_lcp, calib='cc+fc', spiking_fpn=True, **_fc),
             sources={'RetinaNet R18n': {16: dict(
                 config='configs/two_stage/retinanet_r18n_fpn_qc-ft-T16_full_spiking-fpn_synth.py',
                 checkpoint='checkpoints/retinanet_r18n_fpn_qc-ft-T16_full_spiking-fpn_synth.pth')}}),
    ],
)
# targets (issue 45; snn_det.analysis.target_checks)
targets = [
    dict(what='spikes into every synapse: RetinaNet R18n, energy at T=16',
         target='<= 0.5x the ANN',
         check=dict(type='energy_ratio_at', method='+LCP (full, spiking FPN)', T=16, bound=0.5)),
    dict(what='spikes into every synapse: RetinaNet R18n, AP at T=16', target='>= 90% of the ANN',
         check=dict(type='ratio_at', method='+LCP (full, spiking FPN)', T=16, bound=0.90)),
    dict(what='spikes into every synapse, Stage I + II: RetinaNet R18n, energy at T=16',
         target='<= 0.5x the ANN',
         check=dict(type='energy_ratio_at', method='Stage I + II (full, spiking FPN)', T=16,
                    bound=0.5)),
    dict(what='spikes into every synapse, Stage I + II: RetinaNet R18n, AP at T=16',
         target='>= 90% of the ANN',
         check=dict(type='ratio_at', method='Stage I + II (full, spiking FPN)', T=16,
                    bound=0.90)),
]
