"""Memory and time of conversion and simulation at real scale (resources, not accuracy).

    python tools/scale_benchmark.py configs/benchmarks/scale_r50_coco.py
        [--detectors NAME ...] [--runs I ...] [--max-sites N] [--device cuda]
        [--out-root docs/results] [--render]

For every detector of the config and every run (calibration images x T), a fresh
process builds the detector with random (seeded) weights, collects the calibration
images through the config's own pipeline, and converts the backbone (``convert``)
or simulates one image through the whole detector (``simulate``), or times the
lower bound of LCP's passes on one image (``bound``: the converted backbone's
simulation and its neurons-free copy against T ANN forwards).  Reported per
run: peak RSS of the process and of the phase alone, the calibration cache's
peak RAM and disk, time by part (data, observe, thresholds, each calibration
step, simulation) and the compute floor measured in the same process: calibration
images x T x one ANN backbone forward.  ``--max-sites N`` calibrates only the
first N spiking sites (the stride-4 stage of a ResNet holds the largest tensors
and so the peak memory); such rows say so.  Results are merged into
``<out-root>/<name>/results.{json,md}`` (rows of runs not rerun are kept).

``--device cuda`` runs the model, the images and every calibration pass on the GPU,
as a user converting on one GPU would; such rows also report the GPU's peak memory
(``torch.cuda.max_memory_allocated``) and are kept apart from the CPU rows (their own
table; issue 12's targets are the CPU's).  Times on the GPU are taken after
``torch.cuda.synchronize``.
"""
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

from ..utils.checkpoint import write_text_atomic
from ..utils.provenance import code_version, provenance, repo_relative
from .scale_report import NOTE, _markdown, _plot_site_memory, _row_key
from .scale_worker import ROOT


def _make_data(bench: dict) -> None:
    from snn_det.datasets.synthetic import generate_detection_dataset
    root = osp.join(ROOT, bench['data']['root'])
    if osp.isfile(osp.join(root, 'coco', 'annotations', 'instances_val.json')):
        return
    n = int(bench['data']['num_images'])
    generate_detection_dataset(root, bench.get('seed', 0), num_train=n, num_val=2,
                               progress=False)


def planned_runs(bench: dict, detector: str, runs: Optional[Sequence[int]] = None,
                 detectors_named: bool = False) -> list:
    """The ``(index, run)`` pairs of the config to run on ``detector``.

    With no ``runs``: the committed table's, i.e. every run not marked ``extra=True``.  With
    ``runs``: those indices, extra or not.  A run's ``detectors`` key limits it to the
    detectors it names unless detectors were named on the command line.
    """
    chosen = []
    for i, run in enumerate(bench['runs']):
        wanted = i in runs if runs is not None else not run.get('extra', False)
        if not wanted:
            continue
        only = run.get('detectors')
        if only and not detectors_named and detector not in only:
            continue
        chosen.append((i, run))
    return chosen


def run_scale_benchmark(config: str, detectors: Optional[Sequence[str]] = None,
                        runs: Optional[Sequence[int]] = None, max_sites: Optional[int] = None,
                        device: str = 'cpu', out_root: Optional[str] = None,
                        render: bool = False) -> str:
    """Run the config's runs (each in a fresh process) and merge their rows into
    ``<out_root>/<name>/results.{json,md}``; ``render``: only rewrite results.md and the
    plot.  Returns the results file's path."""
    from mmengine.config import Config
    out_root = out_root or osp.join(ROOT, 'docs', 'results')
    bench = Config.fromfile(config).scale_benchmark.to_dict()
    if not render:
        _make_data(bench)
    out_dir = osp.join(out_root, bench['name'])
    os.makedirs(out_dir, exist_ok=True)
    res_path = osp.join(out_dir, 'results.json')
    res = json.load(open(res_path)) if osp.isfile(res_path) else dict(rows=[])
    res.pop('same_code', None)
    if render:
        res['note'] = NOTE
        write_text_atomic(json.dumps(res, indent=1) + '\n', res_path)
        write_text_atomic(_markdown(res), osp.join(out_dir, 'results.md'))
        _plot_site_memory(res, osp.join(out_dir, 'site_memory.png'))
        print(f"wrote {osp.join(out_dir, 'results.md')}")
        return res_path
    res.update(name=bench['name'], config=repo_relative(config), provenance=provenance(),
               title="seed 001's COCO scale (ResNet-50 detectors, 800x1333, T up to 256): "
                     'memory and time of calibration and simulation, not accuracy',
               calib=str(bench['conversion'].get('calib')), chunk_size=bench.get('chunk_size'),
               cache_budget=bench['cache_budget'],
               machine=f'{os.cpu_count()} CPU cores, {platform.machine()}, '
                       f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30:.0f}'
                       ' GiB RAM',
               note=NOTE)
    for det in bench['detectors']:
        if detectors and det['name'] not in detectors:
            continue
        for i, run in planned_runs(bench, det['name'], runs, bool(detectors)):
            run_sites = (max_sites or run.get('max_sites')) if run['kind'] == 'convert' \
                else None
            print(f"[scale] {det['name']}: {run['kind']} images={run['images']} T={run['T']}"
                  + (f' (first {run_sites} sites)' if run_sites else ''), flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                spec_path, out_path = osp.join(tmp, 'spec.json'), osp.join(tmp, 'out.json')
                json.dump(dict(detector=det, run=run, bench=bench, max_sites=run_sites,
                               device=device), open(spec_path, 'w'))
                code = code_version()         # of the code the worker loads, now
                t0 = time.perf_counter()
                proc = subprocess.Popen([sys.executable, '-m',
                                         'snn_det.benchmarks.scale_worker', spec_path,
                                         out_path], cwd=ROOT)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                row = dict(detector=det['name'], kind=run['kind'], images=run['images'],
                           T=run['T'], max_sites=run_sites, wall_s=time.perf_counter() - t0,
                           cache_budget=run.get('cache_budget'),
                           defaults=bool(run.get('defaults')), device=device,
                           calib_batch_size=run.get('calib_batch_size',
                                                    bench['calib_batch_size']),
                           chunk_size=run.get('chunk_size'),
                           channels_last=bool(run.get('channels_last')),
                           peak_rss_gib=usage.ru_maxrss / (1 << 20),
                           date=time.strftime('%Y-%m-%d'), code=code,
                           finished=time.strftime('%Y-%m-%dT%H:%M:%S'))
                if proc.returncode == 0 and osp.isfile(out_path):
                    row.update(json.load(open(out_path)))
                    # the worker restarts the kernel's peak at every site: the process's
                    # peak is the largest of the phases it saw
                    row['peak_rss_gib'] = max(row['peak_rss_gib'],
                                              row.get('phase_peak_rss_gib', 0.0))
                else:
                    row['error'] = f'exit code {proc.returncode}'
            res['rows'] = [r for r in res['rows'] if _row_key(r) != _row_key(row)] + [row]
            res['rows'].sort(key=lambda r: (r['detector'], r['kind'], r['T'], r['images'],
                                            str(r.get('cache_budget'))))
            write_text_atomic(json.dumps(res, indent=1) + '\n', res_path)
            write_text_atomic(_markdown(res), osp.join(out_dir, 'results.md'))
            _plot_site_memory(res, osp.join(out_dir, 'site_memory.png'))
            print(f"[scale]   peak RSS {row['peak_rss_gib']:.2f} GiB, {row['wall_s']:.0f} s",
                  flush=True)
    return res_path
