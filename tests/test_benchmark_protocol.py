"""The evaluation protocol in the benchmarks (docs/evaluation.md): a benchmark run is
evaluated on the held-out test split with 95 % bootstrap intervals on every row, and the
generated tables judge targets from the intervals (met / within noise / missed, ties =
overlapping intervals)."""
import json
import os.path as osp

import pytest

from helpers import ROOT

CFG = osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py')
CKPT = osp.join(ROOT, 'checkpoints/retinanet_r18n_fpn_12e_synth.pth')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """4 train, 2 val and 6 test images of the generated data."""
    from snn_det.datasets import generate_detection_dataset
    root = tmp_path_factory.mktemp('protocol')
    generate_detection_dataset(root / 'synth', seed=3, num_train=4, num_val=2, num_test=6,
                               workers=1, progress=False)
    return root, str(root / 'synth' / 'coco') + '/'


def _bench(tmp_path, data_root: str, **extra) -> str:
    opts = {'train_dataloader.dataset.data_root': data_root,
            'test_dataloader.dataset.data_root': data_root,
            'test_evaluator.ann_file': data_root + 'annotations/instances_val.json',
            'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
            'test_dataloader.batch_size': 2}
    bench = dict(name='proto_bench', seed=0, T=[8], calib_images=2, calib_batch_size=2,
                 val_images=1, bootstrap=200, bootstrap_seed=1,
                 detectors=[dict(name='RetinaNet', config=CFG, checkpoint=CKPT,
                                 cfg_options=opts)],
                 methods=[dict(name='Baseline', conversion=dict(threshold='max'))])
    cfg = tmp_path / 'proto_bench.py'
    cfg.write_text(f'benchmark = {dict(bench, **extra)!r}\n')
    return str(cfg)


def test_a_benchmark_reports_the_test_split_with_intervals(data, tmp_path):
    """The default split is 'test' (all of its 6 images, though the config points at
    val and limits val to 1 image); the ANN and SNN rows carry AP intervals around
    their AP and the SNN row its ratio to the ANN with a paired interval; the files
    and the tables say which split and how many images."""
    from snn_det.benchmarks.accuracy import run_benchmark
    from snn_det.evaluation import bootstrap_intervals  # noqa: F401  (the keys' source)
    _, data_root = data
    out = tmp_path / 'out'
    res = run_benchmark(_bench(tmp_path, data_root), str(out))
    ann, snn = res['results']
    assert res['split'] == 'test'
    assert res['bootstrap'] == dict(resamples=200, seed=1)
    for r in (ann, snn):
        assert r['split'] == 'test' and r['images'] == 6
        lo, hi = r['AP_ci']
        assert lo <= r['AP'] + 1e-3 and r['AP'] - 1e-3 <= hi and hi > lo
        assert r['bootstrap'] == dict(resamples=200, seed=1, images=6, level=0.95)
    assert ann['AP'] > 0.1                          # the shipped model detects
    assert 'ratio' not in ann
    assert snn['ratio'] == pytest.approx(snn['AP'] / ann['AP'], abs=5e-3)
    assert snn['ratio_ci'][0] <= snn['ratio'] <= snn['ratio_ci'][1]
    saved = json.loads((out / 'proto_bench' / 'results.json').read_text())
    assert saved['results'] == res['results']
    md = (out / 'proto_bench' / 'results.md').read_text()
    assert 'test split, 6 images' in md
    ci = f"[{100 * ann['AP_ci'][0]:.1f}, {100 * ann['AP_ci'][1]:.1f}]"
    assert f"ANN: {100 * ann['AP']:.1f} {ci}" in md
    # a rerun on val replaces the test rows of that detector: no table mixes the splits
    val = run_benchmark(_bench(tmp_path, data_root, split='val', bootstrap=0), str(out),
                        only_T=[8])
    assert [(r['split'], r['images']) for r in val['results']] == [('val', 1)] * 2
    assert all('AP_ci' not in r for r in val['results'])


def test_a_missing_split_or_unknown_name_is_one_clear_error(data, tmp_path):
    from snn_det.benchmarks.accuracy import run_benchmark
    root, data_root = data
    with pytest.raises(ValueError, match="split 'train' is not one of"):
        run_benchmark(_bench(tmp_path, data_root, split='train'), str(tmp_path / 'o'))
    bare = root / 'bare'
    from snn_det.datasets import generate_detection_dataset
    generate_detection_dataset(bare, seed=3, num_train=2, num_val=2, workers=1,
                               progress=False)
    with pytest.raises(FileNotFoundError, match="split 'test' is missing"):
        run_benchmark(_bench(tmp_path, str(bare / 'coco') + '/'), str(tmp_path / 'o'))


# -- the generated tables ---------------------------------------------------------------


def _row(method, T, ap, ci=None, ratio=None, ratio_ci=None):
    r = dict(detector='D', method=method, T=T, AP=ap, split='test', images=400)
    if ci is not None:
        r.update(AP_ci=list(ci), bootstrap=dict(resamples=1000, seed=0, images=400,
                                                level=0.95))
    if ratio is not None:
        r.update(ratio=ratio, ratio_ci=list(ratio_ci))
    return r


def _result(rows, T=(8, 16, 32)):
    return dict(name='b', config='configs/benchmarks/b.py', T=list(T), seed=0,
                split='test', results=rows, conversion_times=[])


def test_ratio_targets_are_met_within_noise_or_missed_by_the_interval():
    """SNN/ANN >= 95 %: met when the whole interval is above, missed when it is all
    below, within noise when it straddles 95 % (whichever side the point is on)."""
    from snn_det.analysis.target_checks import ratio_at
    from snn_det.analysis.targets import Target, targets_rows
    cases = {(0.985, (0.975, 0.994)): 'met', (0.914, (0.902, 0.929)): 'missed',
             (0.955, (0.940, 0.970)): 'within noise', (0.945, (0.930, 0.960)): 'within noise'}
    for (ratio, rci), verdict in cases.items():
        rows = [_row('ANN', None, 0.5, (0.48, 0.52)),
                _row('M', 32, 0.5 * ratio, (0.47, 0.51), ratio, rci)]
        row, = targets_rows({'b': _result(rows)},
                            [Target('b', 'M at T=32', '>= 95% of the ANN',
                                    ratio_at('M', 32, 0.95))])
        assert row.met == verdict, (ratio, rci)
        assert f'{100 * ratio:.1f}% [{100 * rci[0]:.1f}, {100 * rci[1]:.1f}]' in row.measured
    # the same numbers without intervals (older results on val): judged on the point
    rows = [dict(r, split='val') for r in (_row('ANN', None, 0.5), _row('M', 32, 0.4775))]
    row, = targets_rows({'b': _result(rows)}, [Target('b', 'w', 't', ratio_at('M', 32, 0.95))])
    assert row.met == 'yes'


def test_orders_tie_by_overlapping_intervals_not_by_half_a_point():
    """+B >= +A: with intervals a 2-point deficit whose intervals overlap is within noise
    (a tie), a deficit with disjoint intervals is missed, a lead with disjoint intervals
    met; without intervals the 0.5-point rule stays."""
    from snn_det.analysis.target_checks import order_at_every_T
    from snn_det.analysis.targets import Target, targets_rows
    target = [Target('b', 'A <= B', 'every T', order_at_every_T(['A', 'B']))]

    def verdict(a, a_ci, b, b_ci):
        rows = [_row('ANN', None, 0.6, (0.58, 0.62)), _row('A', 8, a, a_ci),
                _row('B', 8, b, b_ci)]
        return targets_rows({'b': _result(rows, T=[8])}, target)[0]
    assert verdict(0.50, (0.48, 0.52), 0.48, (0.46, 0.50)).met == 'within noise'
    assert verdict(0.50, (0.49, 0.51), 0.45, (0.44, 0.46)).met == 'missed'
    assert verdict(0.45, (0.44, 0.46), 0.50, (0.49, 0.51)).met == 'met'
    legacy = [dict(_row('A', 8, 0.50), split='val'), dict(_row('B', 8, 0.48), split='val')]
    assert targets_rows({'b': _result(legacy, T=[8])}, target)[0].met == 'no'
    legacy[1]['AP'] = 0.496
    assert targets_rows({'b': _result(legacy, T=[8])}, target)[0].met == 'yes'


def test_reference_targets_ann_above_nothing_and_the_gap_between_two_image_sets():
    """``ann_above``: the ANN beats a model that predicts nothing (AP 0) only when its
    whole interval is above 0.  ``ratio_gap``: two detectors' SNN/ANN ratios within 2
    points, judged on the widest difference their unpaired intervals allow."""
    from snn_det.analysis.reference_checks import ann_above, ratio_gap
    from snn_det.analysis.targets import Target, targets_rows

    def met(rows, check):
        return targets_rows({'b': _result(rows, T=[32])}, [Target('b', 'w', 't', check)])[0]
    assert met([_row('ANN', None, 0.013, (0.010, 0.021))], ann_above(0.0)).met == 'met'
    assert met([_row('ANN', None, 0.004, (0.0, 0.012))], ann_above(0.0)).met == 'within noise'
    assert met([_row('ANN', None, 0.0, (0.0, 0.0))], ann_above(0.0)).met == 'missed'

    def gap(whole, w_ci, tiles, t_ci):
        rows = [dict(_row('M', 32, 0.5, None, whole, w_ci), detector='whole'),
                _row('M', 32, 0.5, None, tiles, t_ci)]
        return met(rows, ratio_gap(32, 'whole', 'D', 0.02))
    close = gap(0.975, (0.970, 0.980), 0.980, (0.975, 0.985))   # -0.5 points [-1.5, 0.5]
    assert close.met == 'met' and '-0.5 points [-1.5, 0.5]' in close.measured
    assert gap(0.90, (0.88, 0.92), 0.98, (0.97, 0.99)).met == 'missed'      # [-11, -5]
    assert gap(0.97, (0.90, 1.04), 0.98, (0.95, 1.01)).met == 'within noise'
    # pair by pair: one pair missed and one within noise make the target missed
    rows = [dict(_row('M', 32, 0.5, None, 0.90, (0.88, 0.92)), detector='whole'),
            _row('M', 32, 0.5, None, 0.98, (0.97, 0.99)),
            dict(_row('M', 32, 0.5, None, 0.97, (0.90, 1.04)), detector='whole2'),
            dict(_row('M', 32, 0.5, None, 0.98, (0.95, 1.01)), detector='D2')]
    two = met(rows, ratio_gap(32, ['whole', 'whole2'], ['D', 'D2'], 0.02))
    assert two.met == 'missed' and 'whole2 against D2: M T=32' in two.measured


def test_the_tables_show_intervals_and_the_split():
    from snn_det.analysis.results import results_markdown
    rows = [_row('ANN', None, 0.519, (0.504, 0.539)),
            _row('M', 32, 0.511, (0.496, 0.531), 0.985, (0.975, 0.994))]
    md = results_markdown(_result(rows, T=[32]))
    assert 'ANN: 51.9 [50.4, 53.9]' in md
    assert '51.1 [49.6, 53.1] (98.5% [97.5, 99.4])' in md
    assert 'test split, 400 images' in md
    old = results_markdown(dict(_result([dict(r, split=None) for r in rows], T=[32]),
                                split=None))
    assert 'val split' in old


def test_rows_kept_from_an_earlier_run_keep_the_split_they_were_measured_on(tmp_path):
    # an earlier results file (no split recorded: val) with two detectors; detector B is
    # rerun on the test split: A's rows stay 'val', not relabelled by the new protocol
    from snn_det.benchmarks.results_file import finish as _finish
    from snn_det.analysis.results import evaluated_text
    old = dict(results=[dict(detector=d, method='ANN', T=None, bbox_mAP=0.5)
                        for d in ('A', 'B')],
               conversion_times=[])
    (tmp_path / 'results.json').write_text(json.dumps(old))
    new = [dict(detector='B', method='ANN', T=None, bbox_mAP=0.4, split='test', images=4)]
    order = dict(detectors=['A', 'B'], methods=['Baseline'],
                 protocol=dict(split='test', bootstrap=dict(resamples=10, seed=0)))
    result = _finish('x', 'configs/benchmarks/baseline_synth.py', [8], 0, new, [],
                     str(tmp_path), False, order)
    splits = {r['detector']: r['split'] for r in result['results']}
    assert splits == {'A': 'val', 'B': 'test'}
    assert 'A: val split' in evaluated_text(result)
    assert 'B: test split, 4 images' in evaluated_text(result)


def test_a_partial_rerun_keeps_the_other_methods_conversion_times(tmp_path):
    """A rerun of one method on the test split keeps the other methods' rows and their
    conversion times (times record no split: they take their detector's)."""
    from snn_det.benchmarks.results_file import finish as _finish
    from snn_det.benchmarks.results_file import time_row
    order = dict(detectors=['A'], methods=['Baseline', 'B'],
                 protocol=dict(split='test', bootstrap=dict(resamples=10, seed=0)))

    def run(method, keep):
        rows = [dict(detector='A', method=method, T=8, AP=0.4, split='test', images=4)]
        times = [time_row('A', method, 8, 1.0, dict(total=2.0, thresholds=1.5))]
        return _finish('x', 'configs/benchmarks/b.py', [8], 0, rows, times, str(tmp_path),
                       keep, order)
    run('Baseline', False)
    result = run('B', True)
    assert [r['method'] for r in result['results']] == ['Baseline', 'B']
    assert [(r['method'], r['seconds']) for r in result['conversion_times']] == \
        [('Baseline', 3.0), ('B', 3.0)]


def test_energy_rows_put_the_whole_models_energy_beside_the_anns(data, tmp_path):
    """With ``energy``, each SNN row carries the whole model's energy per image and the
    ANN's, counted on the same calibration images (seed 003 Sec. VI-E: 4.6 pJ/MAC, 0.9
    pJ/SOP); the results show them in a table and a metric-vs-energy plot.  A spiking
    backbone's model energy is its own plus the ANN's neck and head."""
    from snn_det.benchmarks.accuracy import run_benchmark
    _, data_root = data
    out = tmp_path / 'out'
    res = run_benchmark(_bench(tmp_path, data_root, energy=dict(images=1), bootstrap=0),
                        str(out))
    ann, snn = res['results']
    e = snn['energy']
    assert 'energy' not in ann and e['images'] == 1
    assert e['ann_mJ'] > 0 and e['snn_sops_M'] > 0 and e['snn_macs_M'] > 0
    assert e['ratio'] == pytest.approx(e['snn_mJ'] / e['ann_mJ'], rel=1e-2)
    # the SNN part: MACs of the first layer + SOPs; the rest of the model as the ANN's
    snn_part = 4.6e-9 * e['snn_macs_M'] * 1e6 + 0.9e-9 * e['snn_sops_M'] * 1e6
    assert e['snn_mJ'] > snn_part
    folder = out / 'proto_bench'
    md = (folder / 'results.md').read_text()
    assert f"| Baseline | 8 | {100 * snn['AP']:.1f} |" in md and 'Energy per image' in md
    assert (folder / 'RetinaNet_metric_vs_energy.png').is_file()


def test_a_method_takes_per_detector_options_over_its_own():
    """``conversion_for`` sets one detector's options (seed 003's BPTT loss: MSE on a
    detector's features, KL on a classifier's logits) and leaves the others' alone."""
    from mmengine.config import Config

    from snn_det.benchmarks.accuracy import method_conversion
    from snn_det.conversion.config import ConversionConfig
    bench = Config.fromfile(osp.join(ROOT, 'configs/benchmarks/peers_ltb.py')).benchmark
    stage = next(m for m in bench['methods'] if m['name'] == 'Stage I + II')
    cls = ConversionConfig.from_dict(method_conversion(stage, 'ResNet-18n classifier'))
    det = ConversionConfig.from_dict(method_conversion(stage, 'RetinaNet R18n'))
    assert (cls.fc_loss, det.fc_loss) == ('kl', 'mse')
    assert cls.calib == det.calib and cls.fc_iters == det.fc_iters == 40
    assert stage['conversion']['fc_loss'] == 'mse'          # the method itself is unchanged
    plain = dict(name='+LCP', conversion=dict(calib='lcp'))
    assert method_conversion(plain, 'RetinaNet R18n') == dict(calib='lcp')
