"""tools/scale_benchmark.py's results: rows per device, and what the README takes of them."""
import copy
import json
import os.path as osp

from helpers import ROOT
from helpers import load_tool as _tool

from snn_det.analysis import summary


def _row(res, what):
    """The target row of the scale summary whose ``what`` starts with ``what``."""
    return next(r for r in summary.scale_rows(res) if r.what.startswith(what))


TIME = 'calibration time, thresholds + LCP'


def _results():
    res = json.load(open(osp.join(ROOT, 'docs', 'results', 'scale_r50_coco', 'results.json')))
    cpu = next(r for r in res['rows'] if r['kind'] == 'convert'
               and r['calibrated_sites'] == r['sites'] and not r.get('heap_reuse'))
    # the tests build runs of explicit options from it (the default-option runs have a
    # table of their own)
    cpu = {k: v for k, v in cpu.items() if k not in ('defaults', 'memory_plan')}
    return res, cpu


def test_gpu_rows_are_kept_apart_from_the_cpu_rows_and_targets():
    """A run with ``--device cuda`` is its own row (it does not replace the CPU run of the
    same images and T), has its own table with the GPU's peak, and never enters the CPU
    tables, the site-memory plot or issue 12's targets in the README summary."""
    bench = _tool('scale_benchmark')
    res, cpu = _results()
    gpu = dict(copy.deepcopy(cpu), device='cuda', device_name='NVIDIA H100',
               gpu_peak_gib=7.25, gpu_reserved_peak_gib=9.5, peak_rss_gib=99.0,
               thresholds_lcp_over_floor=1.5)
    assert bench._row_key(gpu) != bench._row_key(cpu)
    assert bench._row_key(dict(cpu, device='cpu')) == bench._row_key(cpu)  # older rows: CPU
    md = bench._markdown(dict(res, rows=res['rows'] + [gpu]))
    cpu_part, gpu_part = md.split('## Calibration on one GPU')
    assert '99.00' not in cpu_part and '| NVIDIA H100 |' in gpu_part
    assert '7.25 (9.50)' in gpu_part
    assert bench._markdown(res).count('## Calibration on one GPU') == 0
    with_gpu = dict(res, rows=res['rows'] + [gpu])
    assert summary.scale_rows(with_gpu) == summary.scale_rows(res)    # targets: CPU only
    after = summary.scale_summary(with_gpu)
    cpu_part, gpu_part = after.split('On one GPU')
    assert '| NVIDIA H100 | 7.2 GiB | 99.0 GiB |' in gpu_part and '99.0 GiB' not in cpu_part
    assert 'On one GPU' not in summary.scale_summary(res)


def test_an_unknown_device_is_refused_in_one_line(capsys):
    bench = _tool('scale_benchmark')
    try:
        bench.main([osp.join(ROOT, 'configs', 'benchmarks', 'scale_r50_coco.py'),
                    '--device', 'tpu'])
    except SystemExit as e:
        assert "--device must be 'cpu' or 'cuda', got 'tpu'" in str(e)
    else:
        raise AssertionError('no error')


def test_cuda_without_a_gpu_is_refused_before_any_run():
    import pytest
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    bench = _tool('scale_benchmark')
    with pytest.raises(SystemExit, match='--device cuda: torch sees no CUDA device'):
        bench.main([osp.join(ROOT, 'configs', 'benchmarks', 'scale_r50_coco.py'),
                    '--device', 'cuda'])


def test_the_profile_split_counts_each_part_once_and_the_rest_as_other():
    """The time of a profiled run is split into its parts (convolutions, spike decode /
    encode, neurons, ...) by the functions' own times: the parts and ``other`` add up to
    the total, and a run of convolutions and a spike encoding lands in those parts."""
    import cProfile

    import torch

    from snn_det.runtime import spike_codes
    from snn_det.runtime.cache import CalibrationCache
    from snn_det.benchmarks.scale_worker import PROFILE_PARTS, _profile_parts
    x = torch.randn(4, 8, 32, 32)
    w = torch.randn(8, 8, 3, 3)
    import time

    def work():
        for _ in range(20):
            y = torch.conv2d(x, w, padding=1)
        with CalibrationCache() as cache:
            spike_codes.encode(cache, (y > 0).float() * 0.5)

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    work()                          # nested calls: own times must not be counted twice
    prof.disable()
    wall = time.perf_counter() - t0
    parts = _profile_parts(prof)
    assert set(parts) == set(PROFILE_PARTS) | {'other', 'total'}
    assert parts['convolutions'] > 0 and parts['spike encode'] > 0
    assert parts['neurons'] == 0 and parts['MMSE thresholds'] == 0
    assert abs(sum(v for k, v in parts.items() if k != 'total') - parts['total']) < 1e-9
    assert parts['other'] >= 0 and parts['total'] <= wall * 1.05 + 1e-3   # the span's time


def test_the_time_target_is_judged_on_the_newest_code_version():
    """Issue 12's time target is judged on the full-depth runs of the code version of the
    newest run (``code``: snn_det's git tree); runs of older versions are quoted apart and
    do not decide it, whichever way they went."""
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] != 'convert']
    old = dict(copy.deepcopy(cpu), images=8, chunk_size=None, code='aaaa', finished='2026-12-01T10:00:00',
               thresholds_lcp_over_floor=4.5)
    new = dict(copy.deepcopy(cpu), images=2, chunk_size=None, code='bbbb', finished='2026-12-05T10:00:00',
               thresholds_lcp_over_floor=1.8)
    row = _row(dict(res, rows=base + [old, new]), TIME)
    assert row.measured.startswith('1.8x; older versions 4.5x')
    assert (row.target, row.met, row.brief) == ('<= 2x the floor', 'yes', '1.8x the floor')
    worse = dict(new, images=32, thresholds_lcp_over_floor=2.4)
    row = _row(dict(res, rows=base + [old, new, worse]), TIME)
    assert row.measured.startswith('1.8x to 2.4x in 2 full-depth runs; '
                                   'older versions 4.5x') and row.met == 'no'
    assert row.brief == '1.8x to 2.4x the floor (2 runs)'


def test_the_memory_targets_say_when_8_and_32_images_ran_different_code():
    """The 32-against-8-images memory check names rows of two code versions as such, even
    when they ran on the same day; rows of one version are compared plainly."""
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] != 'convert']
    r8 = dict(copy.deepcopy(cpu), images=8, chunk_size=None, cache_budget='128M',
              peak_rss_gib=4.0, code='aaaa', date='2026-12-05')
    r32 = dict(r8, images=32, peak_rss_gib=4.1, code='bbbb')
    what = 'calibration peak memory, 32 images at T=32 (cache budget 128M, all sites)'
    row = _row(dict(res, rows=base + [r8, r32]), what)
    assert row.measured == ('4.1 GiB <= 6 GiB, +2% against 8 images (within 10%; runs of '
                            '2026-12-05 and 2026-12-05, not the same version)')
    row = _row(dict(res, rows=base + [r8, dict(r32, code='aaaa')]), what)
    assert row.measured == '4.1 GiB <= 6 GiB, +2% against 8 images (within 10%)'
    assert row.met == 'yes' and row.brief == '4.1 GiB, +2% against 8 images'
    row = _row(dict(res, rows=base + [r8, dict(r32, code='aaaa', peak_rss_gib=4.5)]), what)
    assert row.met == 'no' and '+12% against 8 images (outside 10%)' in row.measured


def test_another_detectors_single_run_does_not_hide_the_memory_targets():
    """Issue 12's memory checks are on the detector with the most calibration rows: a
    Faster R-CNN row that sorts first (one run) leaves the RetinaNet checks in place, the
    32-against-8-images one and the simulation's T=256-against-T=32 one included."""
    res, cpu = _results()
    retina = [r for r in res['rows'] if r['detector'] == 'RetinaNet R50']
    r8 = dict(copy.deepcopy(cpu), detector='RetinaNet R50', images=8, chunk_size=None,
              cache_budget='128M', peak_rss_gib=4.0, code='aaaa')
    r32 = dict(r8, images=32, peak_rss_gib=4.1)
    other = dict(copy.deepcopy(cpu), detector='Faster R-CNN R50', images=2,
                 chunk_size=None, cache_budget=None, code='aaaa')
    sims = [r for r in retina if r['kind'] == 'simulate' and r['T'] == 32]
    sims += [dict(copy.deepcopy(sims[0]), T=256, peak_rss_gib=sims[0]['peak_rss_gib'] + 0.1)]
    rows = summary.scale_rows(dict(res, rows=[other] + sims + [r8, r32]))
    assert any(r.what.endswith('32 images at T=32 (cache budget 128M, all sites)') and
               r.measured == '4.1 GiB <= 6 GiB, +2% against 8 images (within 10%)'
               for r in rows)
    assert any(r.what == 'simulation peak memory at T=256 against T=32' for r in rows)


def test_rows_of_another_code_version_are_quoted_apart():
    """Rows of the newest code version (the ``code`` of the newest full-depth run) are
    judged; rows of other versions are quoted apart, and a memory comparison across
    versions says so."""
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] != 'convert']
    old = dict(copy.deepcopy(cpu), images=8, chunk_size=None, code='aaaa',
               finished='2026-12-05T10:00:00', thresholds_lcp_over_floor=2.3)
    new = dict(copy.deepcopy(cpu), images=2, chunk_size=None, code='bbbb',
               finished='2026-12-06T10:00:00', thresholds_lcp_over_floor=1.9)
    res = dict(res, rows=base + [old, new])
    row = _row(res, TIME)
    assert row.measured.startswith('1.9x; older versions 2.3x')
    assert row.met == 'yes'
    r8 = dict(old, cache_budget='128M', peak_rss_gib=3.35)
    r256 = dict(new, images=8, T=256, cache_budget='128M', peak_rss_gib=3.42)
    what = 'calibration peak memory, 8 images at T=256 (cache budget 128M, all sites)'
    row = _row(dict(res, rows=base + [r8, r256]), what)
    assert row.measured.endswith('(all sites; within 10%; not the same version)')
    row = _row(dict(res, rows=base + [r8, dict(r256, code='aaaa')]), what)
    assert row.measured == ('3.4 GiB <= 6 GiB, +2% against 8 images at T=32 (all sites; '
                            'within 10%)') and row.met == 'yes'


def test_the_floor_timed_during_calibration_is_reported_beside_the_strict_one():
    """Runs that timed ANN forwards between their sites are judged against that floor as
    well, as a second verdict beside (never instead of) the faster forward of before and
    after; runs without it are counted apart, and the table shows '-' for them."""
    bench = _tool('scale_benchmark')
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] != 'convert']
    plain = {k: v for k, v in copy.deepcopy(cpu).items()
             if k not in ('floor_in_run_s', 'thresholds_lcp_over_floor_in_run',
                          'ann_forward_in_run_s')}
    a = dict(plain, images=2, chunk_size=None, code='cccc', finished='2026-12-06T10:00:00',
             thresholds_lcp_over_floor=2.3, thresholds_lcp_over_floor_in_run=1.9,
             floor_in_run_s=100.0)
    b = dict(plain, images=8, chunk_size=None, code='cccc', finished='2026-12-06T11:00:00',
             thresholds_lcp_over_floor=2.1)
    IN_RUN = 'calibration time against the floor timed during calibration'
    ab = dict(res, rows=base + [a, b])
    row = _row(ab, TIME)
    assert row.measured.startswith('2.1x to 2.3x in 2 full-depth runs')
    assert row.met == 'no'
    assert _row(ab, IN_RUN)[2:4] == ('1.9x of the 2', 'yes')
    assert '| 2.3x the floor (1.9x the floor timed during calibration) |' in \
        summary.scale_summary(ab)
    c = dict(b, thresholds_lcp_over_floor_in_run=2.2, floor_in_run_s=90.0)
    row = _row(dict(res, rows=base + [a, c]), IN_RUN)
    assert (row.measured, row.met) == ('1.9x to 2.2x in 2 full-depth runs', 'no')
    md = bench._markdown(dict(res, rows=base + [a, b]))
    row_a = next(l for l in md.splitlines() if l.startswith(f"| {a['detector']} | 2 | 32 |"))
    row_b = next(l for l in md.splitlines() if l.startswith(f"| {b['detector']} | 8 | 32 |"))
    assert '| 2.30 | 100 | 1.90 |' in row_a and '| 2.10 | - | - |' in row_b


def test_rows_of_another_detector_or_one_thread_say_so_in_the_summary():
    """The summary opens with the detector the targets are on; its rows come first, and a
    row of another detector (or run on one thread) names it, so no Faster R-CNN number
    reads as RetinaNet's."""
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] != 'convert']
    ret = [dict(copy.deepcopy(cpu), detector='RetinaNet R50', images=n, chunk_size=None,
                code='dddd', thresholds_lcp_over_floor=1.5 + n / 100) for n in (2, 8)]
    one = dict(ret[0], threads=1, thresholds_lcp_over_floor=1.7)
    frc = dict(ret[0], detector='Faster R-CNN R50', thresholds_lcp_over_floor=1.6)
    text = summary.scale_runs_markdown(dict(res, rows=base + ret + [one, frc]))
    head, body = text.split('|---|---|---|---|---|\n', 1)
    assert 'Calibration of RetinaNet R50' in head and body.startswith('| 2 images at T=32')
    frc_row = next(line for line in body.splitlines()
                   if line.startswith('| Faster R-CNN R50 2 images at T=32'))
    assert '| 1.6x the floor (' in frc_row
    assert body.index('Faster R-CNN R50 2 images') > body.index('8 images at T=32')
    assert any(line.startswith('| 2 images at T=32') and ', one thread |' in line
               for line in body.splitlines())


def test_the_lower_bound_is_this_versions_where_it_has_one():
    """The lower bound quoted beside the time target is the bound row of the version the
    target is judged on (measured on its machine), not the lowest ever measured; without
    one, the lowest of any version."""
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] not in ('convert', 'bound')]
    b0 = next(r for r in res['rows'] if r['kind'] == 'bound')
    old_b = dict(copy.deepcopy(b0), code='aaaa', lcp_two_passes_bound=1.21)
    new_b = dict(copy.deepcopy(b0), code='bbbb', lcp_two_passes_bound=1.34)
    run = dict(copy.deepcopy(cpu), images=2, chunk_size=None, code='bbbb',
               finished='2026-12-05T10:00:00', thresholds_lcp_over_floor=1.9,
               thresholds_s=1.0, floor_s=100.0,
               cache=dict(budget=None, peak_ram_bytes=1, peak_disk_bytes=0))
    text = _row(dict(res, rows=base + [old_b, new_b, run]), TIME).measured
    assert 'two passes with neurons that cost nothing 1.34x = 1.35x the floor' in text
    text = _row(dict(res, rows=base + [old_b, run]), TIME).measured
    assert 'two passes with neurons that cost nothing 1.21x = 1.22x the floor' in text
    # runs that kept convolution products for the second pass: two full passes are no bound
    kept = dict(run, cache=dict(run['cache'], peak_current_bytes=1 << 30))
    text = _row(dict(res, rows=base + [old_b, new_b, kept]), TIME).measured
    assert 'one pass with neurons that cost nothing: 0.67x the floor' in text
    assert 'two full passes, 1.34x, are no lower bound' in text


def test_channels_last_rows_have_their_own_table_and_verdict_against_both_floors():
    """A run calibrating channels last (opt-in, not bit-identical) is its own row, shown in
    its own table with both floors (the default-layout ANN and the channels-last one), and
    judged apart in the README summary: it neither enters the default's time verdict nor
    its memory checks."""
    bench = _tool('scale_benchmark')
    res, cpu = _results()
    base = [r for r in res['rows'] if r['kind'] != 'convert']
    plain = dict(copy.deepcopy(cpu), images=2, chunk_size=None, code='eeee',
                 finished='2026-12-06T10:00:00', thresholds_lcp_over_floor=2.1,
                 thresholds_lcp_over_floor_in_run=2.2, floor_in_run_s=100.0)
    cl = dict(plain, channels_last=True, finished='2026-12-06T11:00:00', peak_rss_gib=77.0,
              thresholds_lcp_over_floor=1.45, thresholds_lcp_over_floor_in_run=1.5,
              floor_channels_last_s=80.0, thresholds_lcp_over_floor_channels_last=1.75,
              floor_channels_last_in_run_s=85.0,
              thresholds_lcp_over_floor_channels_last_in_run=1.7)
    assert bench._row_key(cl) != bench._row_key(plain)
    md = bench._markdown(dict(res, rows=base + [plain, cl]))
    main, rest = md.split('## Calibration in channels-last layout')
    assert '77.00' not in main
    row = next(l for l in rest.splitlines() if l.startswith(f"| {cl['detector']} | 2 | 32 |"))
    assert '| 1.45 |' in row and '| 80 | 1.75 | 85 | 1.70 |' in row
    both = dict(res, rows=base + [plain, cl])
    row = _row(both, TIME)
    assert row.measured.startswith('2.1x') and row.met == 'no'
    row = _row(both, 'calibration time with --calib-channels-last')
    assert row.measured == ('against the floor: 1.4x; against the floor of an ANN run '
                            'channels last too: 1.8x; against that floor timed during '
                            'calibration: 1.7x') and row.met == 'yes'
    assert any(line.startswith('| 2 images at T=32') and 'calibrating channels last | '
               '77.0 GiB |' in line for line in summary.scale_runs_markdown(both).splitlines())
    assert not any('77.0' in r.measured for r in summary.scale_rows(both))


def test_a_plain_rerun_runs_exactly_the_committed_table():
    """With no ``--runs`` the benchmark runs the committed table's runs (0-4 on RetinaNet,
    run 0 on Faster R-CNN) and none marked ``extra``; ``--runs`` picks extra runs, and a
    run's ``detectors`` key holds unless ``--detectors`` was given."""
    from mmengine.config import Config

    from snn_det.benchmarks.scale import planned_runs
    bench = Config.fromfile(osp.join(ROOT, 'configs', 'benchmarks',
                                     'scale_r50_coco.py')).scale_benchmark.to_dict()
    res = json.load(open(osp.join(ROOT, 'docs', 'results', 'scale_r50_coco', 'results.json')))

    def key(det, run):
        return (det, run['kind'], run['images'], run['T'])

    planned = {key(d['name'], run) for d in bench['detectors']
               for _, run in planned_runs(bench, d['name'])}
    committed = {key(r['detector'], r) for r in res['rows'] if r.get('device', 'cpu') == 'cpu'}
    assert planned == committed
    assert [i for i, _ in planned_runs(bench, 'RetinaNet R50')] == [0, 1, 2, 3, 4]
    assert [i for i, _ in planned_runs(bench, 'Faster R-CNN R50')] == [0]
    assert [i for i, _ in planned_runs(bench, 'Faster R-CNN R50', runs=[1, 5])] == [5]
    assert [i for i, _ in planned_runs(bench, 'Faster R-CNN R50', [1, 5], True)] == [1, 5]
