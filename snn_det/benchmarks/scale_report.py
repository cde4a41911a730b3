"""The scale benchmark's results as a table (``results.md``) and a plot of memory site
by site (:mod:`.scale`)."""
import os

from .scale_worker import PROFILE_PARTS


#: the results' header (rewritten by every run and by --render)
NOTE = ('Random-weight R50 detectors and generated images at 800x1333: this measures memory '
        'and time, not accuracy. Peak RSS is the whole process (model, data, calibration); '
        'the calibration / simulation peak is that phase alone. The floor is calibration '
        'images x T x one ANN backbone forward, measured in the same process: "floor" with '
        'the faster of the forwards timed before and after calibration, "floor in run" with '
        'the median of the forwards timed between its sites (the machine\'s speed while it '
        'calibrated). Calibration keeps convolution products between LCP\'s two passes (in '
        'RAM within the cache budget, files beyond): the cache columns include them.')



def _row_key(r: dict) -> tuple:
    """What makes a run a different measurement: a rerun of the same key replaces its row
    (threads included: one and two threads are both kept)."""
    return (r['detector'], r['kind'], r['images'], r['T'], r.get('max_sites'),
            r.get('cache_budget'), bool(r.get('heap_reuse')), r.get('device', 'cpu'),
            r.get('chunk_size'), r.get('threads'), bool(r.get('channels_last')),
            bool(r.get('defaults')), r.get('calib_batch_size', 1))


def _on_cpu(r: dict) -> bool:
    return r.get('device', 'cpu') == 'cpu'


def _fmt(v, nd=2):
    return '-' if v is None else (f'{v:.{nd}f}' if isinstance(v, float) else str(v))


def _cache_cells(r: dict, res: dict) -> str:
    """``budget | RAM / disk`` of a convert row's calibration cache (GiB)."""
    c = r.get('cache', {})
    return (f"{r.get('cache_budget') or res['cache_budget']} | "
            f"{_fmt(c.get('peak_ram_bytes', 0) / 2**30)} / "
            f"{_fmt(c.get('peak_disk_bytes', 0) / 2**30)}")


def _time_cells(r: dict) -> str:
    """``observe | thresholds | calibration | floor | ratio | in-run floor | its ratio`` of a
    convert row (the floor of a prefix run is its share of the sites; ``-`` where a run
    did not time forwards between sites)."""
    calib = r['calib_forward_s'] + sum(r['calib_steps_s'].values())
    frac = r['calibrated_sites'] / r['sites']
    in_run = r.get('floor_in_run_s')
    return (f"{_fmt(r['observe_s'], 0)} | {_fmt(r['thresholds_s'], 0)} | {_fmt(calib, 0)} | "
            f"{_fmt(r['floor_s'] * frac, 0)} | {_fmt(r['thresholds_lcp_over_floor'])} | "
            f"{_fmt(in_run * frac if in_run else None, 0)} | "
            f"{_fmt(r.get('thresholds_lcp_over_floor_in_run'))}")


def _defaults_section(res: dict) -> list:
    """Runs with default options: the memory budget, what the library chose within it, the
    peak it printed before calibrating and the peak the kernel counted."""
    rows = [r for r in res['rows'] if r.get('defaults') and r['kind'] == 'convert'
            and 'error' not in r and 'memory_plan' in r and _on_cpu(r)]
    if not rows:
        return []
    lines = ['', '## Default options (`--memory-budget auto`, no `--chunk-size`, no '
             '`--calib-cache-budget`)', '',
             'The memory budget is a quarter of the machine\'s RAM (at most 3/4 of what is '
             'free); the time chunk and the cache\'s RAM are chosen within it, and the '
             'expected peak is printed before calibrating.  Measured: the whole process\'s '
             'peak resident memory (kernel high-water mark), observation and thresholds '
             'included.  Disk planned: the least the cache writes to files (boundaries and '
             'spike trains beyond its RAM), checked against the free disk before calibrating; '
             'kept convolution products come on top, within half of the disk.  CPU user / '
             'kernel: the calibration\'s CPU time in user space and in the kernel (mostly '
             'zeroing the fresh pages of new tensors).', '',
             '| detector | images | batch | T | sites calibrated | budget (GiB) | chunk chosen '
             '| cache RAM chosen | disk planned, at least (GiB) | cache RAM / disk used (GiB) '
             '| expected peak (GiB) | peak RSS (GiB) | peak / expected | calibration (s) | '
             'floor (s) | / floor | CPU user / kernel (s) | code (run) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        p, c = r['memory_plan'], r.get('cache', {})
        exp = p['total'] / 2**30
        frac = r['calibrated_sites'] / r['sites']
        calib = r['calib_forward_s'] + sum(r['calib_steps_s'].values()) + r['thresholds_s']
        lines.append(
            f"| {r['detector']} | {r['images']} | {r.get('calib_batch_size', 1)} | {r['T']} | "
            f"{r['calibrated_sites']}/{r['sites']} | {_fmt(p['budget'] / 2**30)} | "
            f"{p['chunk_size']} | {r.get('cache_budget')} | "
            f"{_fmt(p['disk'] / 2**30) if 'disk' in p else '-'} | "
            f"{_fmt(c.get('peak_ram_bytes', 0) / 2**30)} / "
            f"{_fmt(c.get('peak_disk_bytes', 0) / 2**30)} | {_fmt(exp)} | "
            f"{_fmt(r['peak_rss_gib'])} | {_fmt(r['peak_rss_gib'] / exp)} | {_fmt(calib, 0)} | "
            f"{_fmt(r['floor_s'] * frac, 0)} | {_fmt(r['thresholds_lcp_over_floor'])} | "
            f"{_fmt(r.get('cpu_user_s'), 0)} / {_fmt(r.get('cpu_system_s'), 0)} | "
            f"{r.get('code', '-')} ({r.get('date', '-')}) |")
    return lines


def _markdown(res: dict) -> str:
    lines = [f"# {res['name']}: memory and time at real scale (not accuracy)", '',
             res['note'] + ' "code" is the version of snn_det a run measured (its git tree; '
             '"-": before runs recorded it).']
    explicit = [r for r in res['rows'] if r['kind'] == 'convert' and 'error' not in r
                and _on_cpu(r) and not r.get('channels_last') and not r.get('defaults')]
    if explicit:
        lines += ['', '## Calibration (thresholds + ' + res['calib'] + ')', '',
                 '| detector | images | T | chunk | threads | heap reuse | sites calibrated | '
                 'peak RSS (GiB) | calibration peak (GiB) | at site | cache budget | '
                 'cache RAM / disk (GiB) | data (s) | observe (s) | thresholds (s) | '
                 'calibration (s) | floor (s) | (thresholds + calibration) / floor | '
                 'floor in run (s) | / floor in run | code (run) |',
                 '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
                 '---|']
    for r in explicit:
        tr = r.get('site_trace') or []
        at = max(range(len(tr)), key=lambda i: tr[i]['peak_rss_gib']) if tr else None
        at = '-' if at is None else f"{at + 1} ({tr[at]['site']})"
        lines.append(
            f"| {r['detector']} | {r['images']} | {r['T']} | "
            f"{r.get('chunk_size') or res['chunk_size']} | {r.get('threads', '-')} | "
            f"{'on' if r.get('heap_reuse') else 'off'} | {r['calibrated_sites']}/"
            f"{r['sites']} | {_fmt(r['peak_rss_gib'])} | {_fmt(r['phase_peak_rss_gib'])} | "
            f"{at} | {_cache_cells(r, res)} | {_fmt(r['data_s'], 0)} | {_time_cells(r)} | "
            f"{r.get('code', '-')} ({r.get('date', '-')}) |")
    lines += _defaults_section(res)
    cl = [r for r in res['rows'] if r['kind'] == 'convert' and 'error' not in r
          and _on_cpu(r) and r.get('channels_last')]
    if cl:
        lines += ['', '## Calibration in channels-last layout (`--calib-channels-last`)', '',
                  'The same conversion with the images, every convolution input and every '
                  'cached boundary in channels-last memory layout (not bit-identical to the '
                  'default layout: a spike may move at a tie).  Two floors: the ANN backbone '
                  'as MMDetection runs it (default layout, as in the table above), and the '
                  'same ANN forward in channels-last layout, timed in the same process.', '',
                  '| detector | images | T | chunk | threads | sites calibrated | '
                  'peak RSS (GiB) | cache budget | cache RAM / disk (GiB) | thresholds (s) | '
                  'calibration (s) | floor (s) | / floor | floor in run (s) | / floor in run | '
                  'channels-last floor (s) | / it | in run (s) | / it in run | code (run) |',
                  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
                  '---|']
        for r in cl:
            frac = r['calibrated_sites'] / r['sites']
            calib = r['calib_forward_s'] + sum(r['calib_steps_s'].values())
            fl, fr = r.get('floor_in_run_s'), r.get('floor_channels_last_in_run_s')
            lines.append(
                f"| {r['detector']} | {r['images']} | {r['T']} | "
                f"{r.get('chunk_size') or res['chunk_size']} | {r.get('threads', '-')} | "
                f"{r['calibrated_sites']}/{r['sites']} | {_fmt(r['peak_rss_gib'])} | "
                f"{_cache_cells(r, res)} | {_fmt(r['thresholds_s'], 0)} | {_fmt(calib, 0)} | "
                f"{_fmt(r['floor_s'] * frac, 0)} | {_fmt(r['thresholds_lcp_over_floor'])} | "
                f"{_fmt(fl * frac if fl else None, 0)} | "
                f"{_fmt(r.get('thresholds_lcp_over_floor_in_run'))} | "
                f"{_fmt(r['floor_channels_last_s'] * frac, 0)} | "
                f"{_fmt(r['thresholds_lcp_over_floor_channels_last'])} | "
                f"{_fmt(fr * frac if fr else None, 0)} | "
                f"{_fmt(r.get('thresholds_lcp_over_floor_channels_last_in_run'))} | "
                f"{r.get('code', '-')} ({r.get('date', '-')}) |")
    lines += ['', '## Simulation of one image through the detector (mmdet test_step)', '',
              '| detector | T | chunk | peak RSS (GiB) | simulation peak (GiB) | simulation (s) '
              '| ANN detector (s) | simulation / (T x ANN) |', '|---|---|---|---|---|---|---|---|']
    for r in res['rows']:
        if r['kind'] != 'simulate' or 'error' in r or not _on_cpu(r):
            continue
        lines.append(f"| {r['detector']} | {r['T']} | {res['chunk_size']} | "
                     f"{_fmt(r['peak_rss_gib'])} | {_fmt(r['phase_peak_rss_gib'])} | "
                     f"{_fmt(r['simulate_s'], 0)} | {_fmt(r['ann_detector_s'])} | "
                     f"{_fmt(r['simulate_over_T_ann'])} |")
    gpu = [r for r in res['rows'] if r['kind'] == 'convert' and 'error' not in r
           and not _on_cpu(r)]
    if gpu:
        lines += ['', '## Calibration on one GPU (`--device cuda`)', '',
                  'The same conversion with the model, the images and every pass on the GPU; '
                  'the calibration cache (spike codes, the ANN boundary) stays in host RAM and '
                  'files, as on the CPU.  GPU peak is `torch.cuda.max_memory_allocated` '
                  '(reserved by the caching allocator in brackets); peak RSS is the host '
                  'process.', '',
                  '| detector | device | images | T | sites calibrated | GPU peak (GiB) | '
                  'peak RSS (GiB) | cache budget | cache RAM / disk (GiB) | observe (s) | '
                  'thresholds (s) | calibration (s) | floor (s) | '
                  '(thresholds + calibration) / floor | floor in run (s) | / floor in run |',
                  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
        for r in gpu:
            lines.append(
                f"| {r['detector']} | {r.get('device_name', r['device'])} | {r['images']} | "
                f"{r['T']} | {r['calibrated_sites']}/{r['sites']} | "
                f"{_fmt(r.get('gpu_peak_gib'))} ({_fmt(r.get('gpu_reserved_peak_gib'))}) | "
                f"{_fmt(r['peak_rss_gib'])} | {_cache_cells(r, res)} | {_time_cells(r)} |")
    prof = [r for r in res['rows'] if r.get('profile_s') and 'error' not in r and _on_cpu(r)]
    if prof:
        keys = list(PROFILE_PARTS) + ['other', 'total']
        lines += ['', "## Where a conversion's time goes (cProfile, own time of each call)", '',
                  'Seconds of the whole conversion (observe, thresholds, calibration) by '
                  'part; convolutions count the ANN\'s (observation, calibration targets) '
                  'as well as the SNN\'s.', '',
                  '| detector | images | T | chunk | threads | cache budget | '
                  + ' | '.join(keys) + ' |', '|---|---|---|---|---|---|' + '---|' * len(keys)]
        for r in prof:
            p = r['profile_s']
            lines.append(f"| {r['detector']} | {r['images']} | {r['T']} | "
                         f"{r.get('chunk_size') or res['chunk_size']} | "
                         f"{r.get('threads', '-')} | "
                         f"{r.get('cache_budget') or res['cache_budget']}"
                         f"{' (heap reuse)' if r.get('heap_reuse') else ''}"
                         f"{' (channels last)' if r.get('channels_last') else ''} | "
                         + ' | '.join(_fmt(p.get(k), 0) for k in keys) + ' |')
    bounds = [r for r in res['rows'] if r['kind'] == 'bound' and 'error' not in r]
    if bounds:
        lines += ['', "## Lower bound of LCP's two passes (one image, plain simulations)", '',
                  "LCP (seed 001 Algo. 2) runs every segment twice: its error at the old bias, "
                  "then the frontier with the corrected bias.  Its two passes cannot take less "
                  "than twice a simulation with neurons that cost nothing (convolutions, "
                  "additions, pooling only); thresholds come on top.  Fastest of the "
                  "simulations against the slower of two ANN medians.", '',
                  '| detector | T | threads | ANN backbone (s) | simulation (s) | '
                  'neurons free (s) | simulation / (T x ANN) | neurons free / (T x ANN) | '
                  'two passes >= (x floor) |', '|---|---|---|---|---|---|---|---|---|']
        for r in bounds:
            lines.append(f"| {r['detector']} | {r['T']} | {r.get('threads', '-')} | "
                         f"{_fmt(max(r['ann_forward_s']))} | {_fmt(min(r['simulate_s']), 1)} | "
                         f"{_fmt(min(r['neurons_free_s']), 1)} | {_fmt(r['snn_over_T_ann'])} | "
                         f"{_fmt(r['neurons_free_over_T_ann'])} | "
                         f"{_fmt(r['lcp_two_passes_bound'])} |")
    notes = [r for r in res['rows'] if (r.get('note') or r.get('profile_note'))
             and 'error' not in r]
    if notes:
        lines += ['', '## Notes on single runs', '']
        lines += [f"- {r['detector']} {r['kind']} {r['images']} images, T={r['T']}"
                  f"{', cache budget ' + r['cache_budget'] if r.get('cache_budget') else ''}"
                  f"{', heap reuse' if r.get('heap_reuse') else ''}"
                  f"{', channels last' if r.get('channels_last') else ''}"
                  f" ({r.get('date', '?')}): "
                  + '; '.join(x for x in (r.get('note'), r.get('profile_note')) if x)
                  for r in notes]
    errors = [r for r in res['rows'] if 'error' in r]
    if errors:
        lines += ['', '## Runs that failed', '']
        lines += [f"- {r['detector']} {r['kind']} images={r['images']} T={r['T']}: "
                  f"{r['error']}" for r in errors]
    lines += ['', f"Machine: {res['machine']}.  Generated by tools/scale_benchmark.py from "
              f"{res['config']}.", '']
    return '\n'.join(lines)


def _plot_site_memory(res: dict, path: str) -> None:
    """Peak RSS and calibration-cache RAM site by site, one line per convert run that
    traced them (full-depth runs first)."""
    rows = [r for r in res['rows'] if r.get('site_trace') and _on_cpu(r)]
    if not rows:
        return
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for r in rows:
        tr = r['site_trace']
        label = (f"{r['detector']}, {r['images']} images, T={r['T']}, "
                 f"budget {r.get('cache_budget') or res.get('cache_budget')}"
                 + (', channels last' if r.get('channels_last') else ''))
        line, = ax.plot(range(1, len(tr) + 1), [t['peak_rss_gib'] for t in tr], marker='.',
                        label=label + ': peak RSS')
        ax.plot(range(1, len(tr) + 1), [t['cache_ram_gib'] for t in tr], ls='--',
                color=line.get_color(), label=label + ': cache RAM')
    ax.set_xlabel('site (calibration order; peak during that site)')
    ax.set_ylabel('GiB')
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{res['name']}: memory site by site during calibration", fontsize=10)
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


