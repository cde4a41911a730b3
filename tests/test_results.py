"""The committed results and the files generated from them (tools/collect_results.py)."""
import json
import os.path as osp
import shutil

from helpers import ROOT, load_tool


def _collect_module():
    return load_tool('collect_results')


def test_generated_results_are_up_to_date(tmp_path):
    """docs/results/*/results.md, docs/results/README.md and the README's results block
    are what tools/collect_results.py makes of the committed results.json files."""
    changed = _collect_module().collect(ROOT, fresh_root=str(tmp_path / 'none'), check=True)
    assert changed == [], f'run python tools/collect_results.py: {changed} are out of date'


def _copy_tree(tmp_path):
    root = tmp_path / 'repo'
    shutil.copytree(osp.join(ROOT, 'docs', 'results'), root / 'docs' / 'results')
    shutil.copy(osp.join(ROOT, 'README.md'), root / 'README.md')
    return root


def test_a_partial_rerun_keeps_every_other_row_and_benchmark(tmp_path):
    """A fresh results file with one changed row and one new row: that row is replaced,
    the new one added, every other row of that benchmark kept, and every other
    benchmark's files untouched; the README shows the new number."""
    collect = _collect_module().collect
    root = _copy_tree(tmp_path)
    docs = root / 'docs' / 'results'
    name = 'seed001_table4_synth'
    old = json.load(open(docs / name / 'results.json'))
    others = {p.parent.name: p.read_text() for p in docs.glob('*/results.json')
              if p.parent.name != name}
    row = next(r for r in old['results'] if r['T'] == 32 and r['detector'] == 'RetinaNet R18n'
               and r['method'] == '+ACP')
    fresh_rows = [dict(row, AP=0.123), dict(row, T=64, AP=0.5)]
    fresh = dict(old, T=[32, 64], results=fresh_rows, conversion_times=[])
    (root / 'fresh' / name).mkdir(parents=True)
    (root / 'fresh' / name / 'results.json').write_text(json.dumps(fresh))
    collect(str(root), fresh_root=str(root / 'fresh'))
    new = json.load(open(docs / name / 'results.json'))
    assert len(new['results']) == len(old['results']) + 1
    keyed = {(r['detector'], r['method'], r['T']): r for r in new['results']}
    assert keyed['RetinaNet R18n', row['method'], 32]['AP'] == 0.123
    assert keyed['RetinaNet R18n', row['method'], 64]['AP'] == 0.5
    for r in old['results']:
        if (r['detector'], r['method'], r['T']) != ('RetinaNet R18n', '+ACP', 32):
            assert keyed[r['detector'], r['method'], r['T']] == r
    for other, text in others.items():
        assert (docs / other / 'results.json').read_text() == text, other
    assert new['conversion_times'] == old['conversion_times']   # none given: all kept
    assert '12.3' in (docs / 'README.md').read_text()
    # and the committed results of a benchmark absent from the fresh folder stay listed
    readme = (docs / 'README.md').read_text()
    for b, text in others.items():     # accuracy benchmarks tabulated, resource ones linked
        assert (f'Benchmark {b}' if '"results"' in text else f'[{b}]({b}/results.md)') \
            in readme, b


def test_a_fresh_clone_without_benchmark_runs_changes_nothing(tmp_path):
    """No work_dirs/benchmarks (a fresh clone): collecting rewrites nothing."""
    collect = _collect_module().collect
    root = _copy_tree(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob('*') if p.is_file()}
    assert collect(str(root), fresh_root=str(root / 'work_dirs' / 'benchmarks')) == []
    assert {p: p.read_bytes() for p in root.rglob('*') if p.is_file()} == before


def test_a_conversion_time_row_keeps_the_timed_parts_only():
    """A budgeted conversion records its memory plan beside its timings (pipeline
    ``per_T[T]['memory_plan']``); the results file's time row keeps the seconds of each part
    and their sum with the observation, and drops what is not a time."""
    from snn_det.benchmarks.results_file import time_row
    per_T = dict(total=10.004, bias=2.5, forward=7.123,
                 memory_plan=dict(budget=6 << 30, chunk_size=4, total=5 << 30))
    row = time_row('RetinaNet R18n', 'SNN', '32', 1.5, per_T)
    assert row == dict(detector='RetinaNet R18n', method='SNN', T=32, seconds=11.5,
                       total=10.0, bias=2.5, forward=7.12)
