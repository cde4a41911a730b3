# Spikes into every synapse (issue 45): the fully spiking RetinaNet R18n (backbone, FPN and
# head, scope full) with neurons on FPN's currents (--spiking-fpn: signed
# neurons on its laterals and outputs, so that no convolution after the first layer takes
# analog input), +LCP, at T = 8, 16 and 32, evaluated on the held-out test split (all 400
# images) with the whole model's energy per image beside the ANN's (4.6 pJ/MAC, 0.9 pJ/SOP,
# counted on 2 calibration images; docs/deployment.md).  About 30 CPU-minutes here.
#   python tools/benchmark.py configs/benchmarks/spiking_fpn.py
_base_ = ['./_synth_detectors.py']
_lcp = dict(threshold='mmse', channel_wise=True, shift='potential', calib='lcp')
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
    ],
)
# targets (issue 45; snn_det.analysis.target_checks)
targets = [
    dict(what='spikes into every synapse: RetinaNet R18n, energy at T=16',
         target='<= 0.5x the ANN',
         check=dict(type='energy_ratio_at', method='+LCP (full, spiking FPN)', T=16, bound=0.5)),
    dict(what='spikes into every synapse: RetinaNet R18n, AP at T=16', target='>= 90% of the ANN',
         check=dict(type='ratio_at', method='+LCP (full, spiking FPN)', T=16, bound=0.90)),
]
