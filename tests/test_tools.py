"""tools/convert.py and tools/test.py end to end on a tiny generated dataset."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CFG = osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py')
PY = sys.executable


def _run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([PY] + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A 12/4-image dataset and a randomly initialised RetinaNet checkpoint."""
    from mmengine.config import Config

    import snn_det  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from snn_det.datasets import generate_detection_dataset
    register_all_modules()
    root = tmp_path_factory.mktemp('tiny')
    generate_detection_dataset(root / 'synth', seed=1, num_train=12, num_val=4, workers=1,
                               progress=False)
    model = MODELS.build(Config.fromfile(CFG).model)
    ckpt = root / 'ann.pth'
    torch.save({'meta': {'note': 'random'}, 'state_dict': model.state_dict()}, ckpt)
    data_root = str(root / 'synth' / 'coco') + '/'
    opts = ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_evaluator.ann_file={data_root}annotations/instances_val.json',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'test_dataloader.batch_size=2']
    return root, ckpt, opts


def test_convert_then_test_prints_a_table_and_saves_json(tiny):
    root, ckpt, opts = tiny
    work = root / 'conv'
    r = _run(['tools/convert.py', CFG, str(ckpt), '--T', '4', '8', '--calib', 'lcp',
              '--calib-images', '4', '--calib-batch-size', '2', '--work-dir', str(work)] + opts,
             ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    name = 'retinanet_r18n_fpn_12e_synth_snn'
    pth, py = work / f'{name}.pth', work / f'{name}.py'
    assert pth.exists() and py.exists()
    ck = torch.load(pth, weights_only=True)            # weights-only loadable
    assert ck['meta']['converted_T'] == [4, 8]
    assert any(k.startswith('backbone.snn.T8.neurons.') for k in ck['state_dict'])
    assert 'spiking sites' in r.stdout
    r = _run(['tools/test.py', str(py), str(pth), '--T', '4', '8', '16',
              '--work-dir', str(root / 'test')] + opts, ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '| ANN |' in r.stdout and '| SNN | 16 (calib T=8) |' in r.stdout
    saved = json.load(open(root / 'test' / 'snn_test_results.json'))
    res = saved['results']
    assert [x['T'] for x in res] == [None, 4, 8, 16]
    assert saved['provenance']['versions']['torch'] == torch.__version__
    assert all('AP' in x for x in res)
    assert (root / 'test' / 'snn_metric_vs_T.png').exists()
    # energy per image at each T beside the ANN's, on the first test images
    assert 'vs ANN' in r.stdout and 'whole model' in r.stdout
    e = json.load(open(root / 'test' / 'snn_energy.json'))
    assert e['images'] == 2 and sorted(e['per_T'], key=int) == ['4', '8', '16']
    sops = [e['per_T'][T]['snn_sops_per_image'] for T in ('4', '8', '16')]
    assert 0 < sops[0] < sops[2]              # synaptic operations grow with the steps
    for c in e['per_T'].values():
        ann = c['ann_energy_mJ_per_image']
        assert ann['full'] > ann['backbone'] > 0        # the ANN's figure beside the SNN's
        assert abs(c['model_over_ann'] - c['model_energy_mJ'] / ann['full']) < 1e-9
    assert (root / 'test' / 'snn_metric_vs_energy.png').exists()


def test_convert_and_test_a_fully_spiking_detector(tiny):
    """--scope full: the written config builds a SpikingDetector whose head spikes, the
    summary says what is read out and that nothing stays analog, tools/test.py evaluates
    it, and asking it for another scope is one clear line.  Calibrated channels last
    (--calib-channels-last) through the neck and head."""
    root, ckpt, opts = tiny
    work = root / 'full'
    r = _run(['tools/convert.py', CFG, str(ckpt), '--T', '4', '--scope', 'full',
              '--relu-neuron', 'signed', '--calib-channels-last',
              '--calib', 'lcp', '--calib-images', '2', '--calib-batch-size', '2',
              '--work-dir', str(work)] + opts, ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'scope=full: spiking backbone, neck, bbox_head' in r.stdout
    assert 'analog (ANN on the readout): nothing' in r.stdout
    # --relu-neuron signed: every site's neuron is signed, and the written config says so
    stage_lines = [ln for ln in r.stdout.splitlines() if ' sites=' in ln]
    assert stage_lines and all(
        ln.split('sites=')[1].split()[0] == ln.split('(signed')[1].split(')')[0].strip()
        for ln in stage_lines), stage_lines
    name = 'retinanet_r18n_fpn_12e_synth_snn'
    text = (work / f'{name}.py').read_text()
    assert "type='SpikingDetector'" in text and "detector_type='RetinaNet'" in text
    assert "relu_neuron='signed'" in text
    assert 'channels_last=True' in text       # calibrated channels last (the neck and head too)
    ck = torch.load(work / f'{name}.pth', weights_only=True)
    assert any(k.startswith('backbone.snn.T4.neurons.bbox_head_cls_convs_0')
               for k in ck['state_dict'])
    r = _run(['tools/test.py', str(work / f'{name}.py'), str(work / f'{name}.pth'), '--T', '4',
              '--no-ann', '--work-dir', str(root / 'full_test')] + opts, ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '| SNN | 4 |' in r.stdout
    r = _run(['tools/test.py', str(work / f'{name}.py'), str(work / f'{name}.pth'), '--T', '4',
              '--scope', 'backbone'] + opts, ROOT)
    assert r.returncode != 0 and "has scope 'full'" in r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize('args,msg', [
    (['--T', '0'], 'T must be a positive'),
    (['--T', '8', '--threshold', 'max', '--calib', 'magic'], "unknown calibration 'magic'"),
    (['--T', '8', '--calib-current-limit', 'lots'], "--calib-current-limit: cannot read 'lots'"),
])
def test_convert_rejects_bad_options_without_writing(tiny, args, msg):
    root, ckpt, opts = tiny
    work = root / 'bad'
    r = _run(['tools/convert.py', CFG, str(ckpt), '--work-dir', str(work)] + args + opts, ROOT)
    assert r.returncode != 0
    assert msg in r.stderr.strip().splitlines()[-1]
    assert not work.exists()


def test_unreadable_or_missing_checkpoint_is_one_clear_line(tiny, tmp_path):
    root, _, opts = tiny
    bad = tmp_path / 'broken.pth'
    bad.write_bytes(b'not a checkpoint')
    for path, msg in [(bad, 'cannot read checkpoint'), (tmp_path / 'nope.pth', 'does not exist')]:
        r = _run(['tools/convert.py', CFG, str(path), '--work-dir', str(tmp_path / 'w')] + opts,
                 ROOT)
        assert r.returncode != 0
        last = r.stderr.strip().splitlines()[-1]
        assert msg in last and str(path) in last
    assert not (tmp_path / 'w').exists()


def test_runner_checkpoint_with_numpy_meta_loads_weights_only(tmp_path):
    import numpy as np

    from snn_det.utils.checkpoint import CheckpointError, load_checkpoint_file
    p = tmp_path / 'runner.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'message_hub': {'best': np.float64(0.5), 'arr': np.arange(3)}}, p)
    with pytest.raises(Exception):
        torch.load(p, weights_only=True)               # what mmengine 0.10.7 would do
    ck = load_checkpoint_file(p)
    assert float(ck['message_hub']['best']) == 0.5
    class Evil:                                        # noqa: E306
        def __reduce__(self):
            return (os.system, ('echo pwned',))
    q = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, q)
    with pytest.raises(CheckpointError, match='weights-only allowlist'):
        load_checkpoint_file(q)


def test_runner_logs_load_but_getattr_stays_restricted(tmp_path):
    import pickle

    from mmengine.logging import HistoryBuffer

    from snn_det.utils.checkpoint import CheckpointError, load_checkpoint_file
    buf = HistoryBuffer()
    buf.update(1.5)
    p = tmp_path / 'runner.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buf}}, 'state_dict': {}}, p)
    assert load_checkpoint_file(p)['message_hub']['log_scalars']['loss'].current() == 1.5

    class Sneaky:                         # getattr reaching past the statistics methods
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))
    q = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, q)
    with pytest.raises((CheckpointError, pickle.UnpicklingError)):
        load_checkpoint_file(q)


def test_benchmark_writes_tables_and_reruns_single_methods(tiny, tmp_path):
    """A benchmark config -> results.{json,csv,md} + plots with every method x T; a method
    may have one source model per T; rerunning one method or one T replaces only its rows
    (and error boxes); unknown method names and T are refused."""
    from snn_det.benchmarks.accuracy import run_benchmark
    root, ckpt, opts = tiny
    overrides = dict(kv.split('=', 1) for kv in opts[1:])
    overrides = {k: (int(v) if v.isdigit() else v == 'True' if v in ('True', 'False') else v)
                 for k, v in overrides.items()}
    cfg = tmp_path / 'tiny_bench.py'
    cfg.write_text(
        f"benchmark = dict(name='tiny_bench', seed=0, T=[2, 4], calib_images=2,\n"
        f"    calib_batch_size=2, val_images=2, split='val', bootstrap=0,\n"
        f"    detectors=[dict(name='Tiny RetinaNet', config={CFG!r}, checkpoint={str(ckpt)!r},\n"
        f"                    cfg_options={overrides!r})],\n"
        f"    methods=[dict(name='Baseline', conversion=dict(threshold='max')),\n"
        f"             dict(name='+LCP', conversion=dict(threshold='max', calib='lcp'),\n"
        f"                  T={{'Tiny RetinaNet': [4]}}),\n"
        f"             dict(name='Per-T model', conversion=dict(threshold='max'),\n"
        f"                  sources={{'Tiny RetinaNet': {{4: dict(config={CFG!r},\n"
        f"                                                     checkpoint={str(ckpt)!r})}}}})],\n"
        f"    error_plot=dict(T=4, methods=['Baseline', '+LCP'], images=2))\n")
    out = tmp_path / 'out'
    res = run_benchmark(str(cfg), str(out))
    keys = [(r['method'], r['T']) for r in res['results']]
    # a method's own T list (here per detector) limits its rows; a per-T source only has
    # rows at its T, after its own ANN row
    src_ann = (osp.basename(CFG) + ' (its ANN)', None)
    assert keys == [('ANN', None), src_ann, ('Baseline', 2), ('Baseline', 4), ('+LCP', 4),
                    ('Per-T model', 4)]
    assert all('AP' in r and 'AP50' in r and 'APl' in r for r in res['results'])
    assert {(t['method'], t['T']) for t in res['conversion_times']} == \
        set(keys) - {('ANN', None), src_ann}
    assert all('bias' in t for t in res['conversion_times'] if t['method'] == '+LCP')
    d = out / 'tiny_bench'
    md = (d / 'results.md').read_text()
    assert '| Baseline |' in md and '| +LCP |' in md and 'Conversion time' in md
    assert (d / 'results.csv').read_text().count('\n') == 7
    assert (d / 'Tiny_RetinaNet_metric_vs_T.png').exists()
    assert (d / 'Tiny_RetinaNet_layer_error_T4.png').exists()
    errs = json.loads((d / 'Tiny_RetinaNet_layer_error_T4.json').read_text())
    assert list(errs) == ['Baseline', '+LCP']
    before = json.loads((d / 'results.json').read_text())['results']
    again = run_benchmark(str(cfg), str(out), only_methods=['+LCP'])
    assert [(r['method'], r['T']) for r in again['results']] == keys
    assert [r for r in again['results'] if r['method'] == 'Baseline'] == \
        [r for r in before if r['method'] == 'Baseline']
    # the rerun measured +LCP's boxes again and kept Baseline's
    errs2 = json.loads((d / 'Tiny_RetinaNet_layer_error_T4.json').read_text())
    assert list(errs2) == ['Baseline', '+LCP'] and errs2['Baseline'] == errs['Baseline']
    only2 = run_benchmark(str(cfg), str(out), only_T=[2])
    assert [(r['method'], r['T']) for r in only2['results']] == keys
    assert [r for r in only2['results'] if r['T'] == 4] == \
        [r for r in again['results'] if r['T'] == 4]
    # a run killed after its first measurement (memory, time) has already written that row
    import snn_det.benchmarks.accuracy as bm
    real_test, calls = bm._test, []

    def dies_on_second_snn(runner, kind, T=None):
        calls.append(kind)
        if calls.count('snn') == 2:
            raise MemoryError('killed')
        return real_test(runner, kind, T) if T is not None else real_test(runner, kind)
    bm._test = dies_on_second_snn
    try:
        with pytest.raises(MemoryError):
            run_benchmark(str(cfg), str(out / 'killed'))
    finally:
        bm._test = real_test
    kept = json.loads((out / 'killed' / 'tiny_bench' / 'results.json').read_text())
    assert [(r['method'], r['T']) for r in kept['results']] == [('ANN', None), ('Baseline', 2)]
    assert kept['complete'] is False
    with pytest.raises(KeyError, match='not in'):
        run_benchmark(str(cfg), str(out), only_methods=['+magic'])
    with pytest.raises(KeyError, match='not in'):
        run_benchmark(str(cfg), str(out), only_T=[8])


def test_gzip_compressed_checkpoint_loads_like_the_plain_one(tmp_path):
    """*.pth.gz (how checkpoints over the size limit are shipped) loads through the same
    weights-only loader, tensors equal; a damaged one is one clear error."""
    import gzip

    from snn_det.utils.checkpoint import CheckpointError, load_checkpoint_file
    state = {'meta': {'epoch': 3}, 'state_dict': {'w': torch.randn(4, 3), 'n': torch.tensor(7)}}
    plain = tmp_path / 'm.pth'
    torch.save(state, plain)
    packed = tmp_path / 'm.pth.gz'
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    got = load_checkpoint_file(str(packed))
    assert got['meta'] == {'epoch': 3}
    assert all(torch.equal(got['state_dict'][k], v) for k, v in state['state_dict'].items())
    broken = tmp_path / 'b.pth.gz'
    broken.write_bytes(packed.read_bytes()[:60])
    with pytest.raises(CheckpointError, match="cannot read checkpoint '.*b.pth.gz'"):
        load_checkpoint_file(str(broken))


def test_run_default_converts_tests_and_writes_the_main_jobs_table(tmp_path):
    """The README's main command end to end (convert, test at each T on the test split,
    the table saved in the benchmarks' format with its timings), here on 4 test images."""
    from snn_det.datasets import generate_detection_dataset
    generate_detection_dataset(tmp_path / 'synth', seed=2, num_train=4, num_val=1,
                               num_test=4, workers=1, progress=False)
    data_root = str(tmp_path / 'synth' / 'coco') + '/'
    opts = [f'{k}.dataset.data_root={data_root}' for k in ('train_dataloader',
                                                            'test_dataloader')]
    opts += [f'test_evaluator.ann_file={data_root}annotations/instances_val.json',
             'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']
    res_dir = tmp_path / 'main_job'
    r = _run(['tools/run_default.py', '--T', '2', '4', '--convert-T', '4', '--calib-images',
              '2', '--no-data', '--work-dir', str(tmp_path / 'work'), '--results-dir',
              str(res_dir), '--cfg-options'] + opts, ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'main job finished' in r.stdout
    saved = json.loads((res_dir / 'results.json').read_text())
    rows = saved['results']
    assert [(x['method'], x['T']) for x in rows] == [
        ('ANN', None), ('SNN (lcp, converted for T=4)', 2), ('SNN (lcp, converted for T=4)', 4)]
    assert saved['split'] == 'test' and all(x['bootstrap']['images'] == 4 for x in rows)
    assert rows[0]['AP'] > 0.05                     # the shipped detector finds the shapes
    assert all(x['AP_ci'][0] <= x['AP'] <= x['AP_ci'][1] for x in rows)
    times = saved['conversion_times']
    assert [t['T'] for t in times] == [4] and times[0]['total'] > 0
    assert saved['provenance']['commit'] and (res_dir / 'results.md').exists()


def test_provenance_names_the_cpu_model_and_the_installed_peers():
    """Two 2-core machines can differ twofold in speed: results record the CPU's model; and
    the peers' versions (SpikingJelly, sinabs, ...) as installed, without importing them."""
    import importlib.metadata

    from snn_det.analysis.results import provenance_line
    from snn_det.utils.provenance import PEERS, provenance
    p = provenance()
    assert p['cpu'] and p['cpu'] != 'unknown'
    for name in PEERS:
        try:
            assert p['versions'][name] == importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            assert name not in p['versions']
    line = provenance_line(dict(provenance=p))
    assert line.endswith(f"{p['machine']} ({p['cpu']}).")
    if 'spikingjelly' in p['versions']:
        assert f"spikingjelly {p['versions']['spikingjelly']}" in line
