"""Summaries of the resource benchmarks (memory, time, speed) as tables of rows.

``tools/scale_benchmark.py`` (seed 001's COCO scale: peak memory and calibration time
against the floor) and ``tools/speed_benchmark.py`` (simulation speed against the ANN and
SpikingJelly) write ``results.json`` files with a ``rows`` list.  This module turns them
into two kinds of table: the runs of the current code (:func:`scale_runs_markdown`,
:func:`speed_runs_markdown`) and their targets as :class:`~.results.Row` objects
(:func:`scale_rows`, :func:`speed_rows`: what, target, measured, met), which the results
index lists in full and the README in brief.  A target is met or not on the unrounded
numbers.

Longer than most modules (~420 lines): the scale and speed benchmarks' tables and targets
read the same rows (versions, floors, peaks); one file keeps their judgements consistent.
"""
from collections import Counter
from typing import List, Optional, Sequence

from .results import FULL_SCOPE_ROWS
from .targets import Row, rows_markdown

SCALE, SPEED = 'scale_r50_coco', 'simulation_speed'


def _gib(v: float) -> str:
    return f'{v:.1f} GiB'


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    lines += ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


# -- seed 001's scale -------------------------------------------------------------------


class _Scale:
    """The rows of a scale results file, sorted into what the summaries need."""

    def __init__(self, res: dict):
        every = [r for r in res.get('rows', []) if 'error' not in r]
        self.res = res
        self.rows = [r for r in every if r.get('device', 'cpu') == 'cpu']
        self.gpu = [r for r in every if r.get('device', 'cpu') != 'cpu'
                    and r['kind'] == 'convert']
        self.conv = [r for r in self.rows if r['kind'] == 'convert']
        self.sim = [r for r in self.rows if r['kind'] == 'simulate']
        self.bound = [r for r in self.rows if r['kind'] == 'bound']
        # the targets are on one detector (RetinaNet R50): the one with the most
        # calibration rows, not whichever sorts first
        counts = Counter(r['detector'] for r in sorted(self.conv, key=lambda r: r['detector']))
        self.det = counts.most_common(1)[0][0] if counts else ''
        self.full = [r for r in self.conv if r['calibrated_sites'] == r['sites']
                     and not r.get('heap_reuse') and not r.get('channels_last')
                     and (r.get('defaults') or not r.get('chunk_size'))]
        self.full_cl = [r for r in self.conv if r['calibrated_sites'] == r['sites']
                        and r.get('channels_last') and not r.get('heap_reuse')]
        self.newest = max(self.full, key=lambda r: r.get('finished', ''), default=None)
        self.current = [r for r in self.full if self.of_newest(r)]

    def code(self, r: dict) -> Optional[str]:
        return r.get('code')

    def of_newest(self, r: dict) -> bool:
        """Whether row ``r`` ran the code version of the newest full-depth run."""
        n = self.newest
        return bool(n is not None and n.get('code') and self.code(r) == self.code(n))

    def row(self, kind, images, T, budget=None, sites=None) -> Optional[dict]:
        """The plain run (no opt-in) of the targets' detector with these settings."""
        return next((r for r in self.rows if r['kind'] == kind and r['T'] == T
                     and r['detector'] == self.det
                     and (images is None or r['images'] == images)
                     and r.get('cache_budget') == budget and not r.get('heap_reuse')
                     and not r.get('chunk_size') and not r.get('channels_last')
                     and not r.get('defaults') and (sites is None or r.get('calibrated_sites') == sites)), None)

    def depth(self, n: int) -> str:
        """Rows calibrating a prefix of the sites say so: they miss later sites' peaks."""
        total = next(r['sites'] for r in self.conv if r['detector'] == self.det)
        return 'all sites' if n == total else f'first {n} of {total} sites'

    def depths(self) -> List[int]:
        return sorted({r['calibrated_sites'] for r in self.conv if r['detector'] == self.det})

    def budgets(self) -> list:
        return [None] + sorted({r['cache_budget'] for r in self.conv if r.get('cache_budget')})


def _run_name(r: dict, det: str, default_budget=None) -> str:
    """A calibration run in words: detector (when not the targets' one), images, T and
    every setting that differs from the default."""
    budget = r.get('cache_budget') or default_budget
    defaults = r.get('defaults')
    settings = [f"first {r['calibrated_sites']} of {r['sites']} sites"
                if r['calibrated_sites'] < r['sites'] else '',
                f"batch {r['calib_batch_size']}" if r.get('calib_batch_size', 1) > 1 else '',
                (f"default options (chose chunks of {r['chunk_size']} steps, cache RAM "
                 f"{budget})" if defaults else f'cache budget {budget}' if budget else ''),
                'heap reuse' if r.get('heap_reuse') else '',
                f"chunks of {r['chunk_size']} steps" if r.get('chunk_size') and not defaults
                else '',
                'one thread' if r.get('threads') == 1 else '',
                'calibrating channels last' if r.get('channels_last') else '']
    return (('' if r['detector'] == det else f"{r['detector']} ")
            + ', '.join([f"{r['images']} images at T={r['T']}"] + [x for x in settings if x]))


def _seconds(r: dict) -> float:
    """Thresholds + calibration of a run, in seconds."""
    return r['thresholds_s'] + r['calib_forward_s'] + sum(r['calib_steps_s'].values())


def _time_cell(r: dict) -> str:
    if r['calibrated_sites'] < r['sites']:
        return '-'
    text = f"{r['thresholds_lcp_over_floor']:.1f}x the floor"
    if r.get('thresholds_lcp_over_floor_in_run'):
        text += f" ({r['thresholds_lcp_over_floor_in_run']:.1f}x the floor timed during " \
                'calibration)'
    if r.get('thresholds_lcp_over_floor_channels_last'):
        text += (f", {r['thresholds_lcp_over_floor_channels_last']:.1f}x the floor of an "
                 'ANN run channels last too')
    return text


def scale_runs_markdown(res: dict) -> str:
    """The calibration runs of the newest code version (the targets' detector first), the
    simulation runs, and any GPU runs, as tables."""
    s = _Scale(res)
    runs = [r for r in s.conv if s.of_newest(r)] or s.conv
    runs = sorted(runs, key=lambda r: (r['detector'] != s.det, r['detector'], r['T'],
                                       str(r.get('cache_budget')), r['images']))
    calib = res.get('calib', 'calibration')
    out = [f'Calibration of {s.det} (thresholds + {calib}), the newest code version measured:',
           '',
           _table(['run', 'peak RSS', 'cache in RAM / on disk', 'thresholds + calibration',
                   f'thresholds + {calib}'],
                  [(_run_name(r, s.det, res.get('cache_budget')), _gib(r['peak_rss_gib']),
                    '{:.2f} / {:.2f} GiB'.format(
                        (r.get('cache') or {}).get('peak_ram_bytes', 0) / 2**30,
                        (r.get('cache') or {}).get('peak_disk_bytes', 0) / 2**30),
                    f'{_seconds(r):.0f} s', _time_cell(r)) for r in runs])]
    if s.sim:
        out += ['Simulation of one image through the whole detector:', '',
                _table(['detector', 'T', 'peak RSS', 'time'],
                       [(r['detector'], r['T'], _gib(r['peak_rss_gib']),
                         f"{r['simulate_over_T_ann']:.2f}x T ANN detector forwards")
                        for r in sorted(s.sim, key=lambda r: (r['detector'], r['T']))])]
    if s.gpu:
        out += ['On one GPU:', '',
                _table(['run', 'GPU', 'GPU peak', 'host peak', f'thresholds + {calib}'],
                       [(f"{r['detector']} {r['images']} images at T={r['T']}",
                         r.get('device_name', r['device']), _gib(r.get('gpu_peak_gib', 0)),
                         _gib(r['peak_rss_gib']),
                         f"{r['thresholds_lcp_over_floor']:.1f}x the floor")
                        for r in sorted(s.gpu, key=lambda r: (r['detector'], r['T'],
                                                              r['images']))])]
    return '\n'.join(out)


def _memory_rows(s: _Scale) -> List[Row]:
    """Peak memory at 32 images (<= 6 GiB, within 10% of 8 images) and at T=256 (within
    10% of T=32), per cache budget and calibration depth."""
    out, default_budget = [], s.res.get('cache_budget')
    for budget in s.budgets():
        for n in s.depths():
            r8, r32 = (s.row('convert', i, 32, budget=budget, sites=n) for i in (8, 32))
            where = f'cache budget {budget or default_budget}, {s.depth(n)}'
            if r32 is None:
                continue
            p32 = r32['peak_rss_gib']
            text, ok = f"{_gib(p32)} {'<=' if p32 <= 6 else '>'} 6 GiB", p32 <= 6
            if r8:
                d = p32 / r8['peak_rss_gib'] - 1
                same = (s.code(r8) == s.code(r32) if (r8.get('code') or r32.get('code'))
                        else r8.get('date') == r32.get('date'))
                dates = '' if same else (f"; runs of {r32.get('date', '?')} and "
                                         f"{r8.get('date', '?')}, not the same version")
                text += (f", {100 * d:+.0f}% against 8 images "
                         f"({'within' if abs(d) <= 0.1 else 'outside'} 10%{dates})")
                ok = ok and abs(d) <= 0.1
            brief = f'{_gib(p32)}' + (f', {100 * d:+.0f}% against 8 images' if r8 else '')
            out.append(Row(f'calibration peak memory, 32 images at T=32 ({where})',
                           '<= 6 GiB, within 10% of 8 images', text, 'yes' if ok else 'no',
                           SCALE, brief, headline=n == s.depths()[-1] and s.of_newest(r32),
                           current=s.of_newest(r32)))
    for budget in s.budgets():
        for n in s.depths():
            r256 = s.row('convert', 8, 256, budget=budget, sites=n)
            if r256 is None:
                continue
            p256 = r256['peak_rss_gib']
            r32 = s.row('convert', 8, 32, budget=budget, sites=r256['sites'])
            text, ok = f"{_gib(p256)} {'<=' if p256 <= 6 else '>'} 6 GiB", p256 <= 6
            if r32 is not None:
                d = p256 / r32['peak_rss_gib'] - 1
                text += (f", {100 * d:+.0f}% against 8 images at T=32 (all sites; "
                         f"{'within' if abs(d) <= 0.1 else 'outside'} 10%"
                         + ('' if s.code(r256) == s.code(r32) else '; not the same version')
                         + ')')
                ok = ok and abs(d) <= 0.1
            out.append(Row(f'calibration peak memory, 8 images at T=256 (cache budget '
                           f'{budget or default_budget}, {s.depth(n)})',
                           '<= 6 GiB, within 10% of T=32', text, 'yes' if ok else 'no',
                           SCALE, _gib(p256), headline=False, current=s.of_newest(r256)))
    if out and not any(r.headline for r in out):     # no 32-image run of this version
        full = [r for r in out if r.what.endswith('all sites)')] or out
        out[out.index(full[0])] = full[0]._replace(headline=True)
    return out


def _spread(rs: Sequence[dict], key: str = 'thresholds_lcp_over_floor'):
    """``(text, worst ratio, runs that have one)`` of ``key`` over the rows ``rs``."""
    ratios = [r[key] for r in rs if r.get(key)]
    if not ratios:
        return '', None, 0
    if len(ratios) == 1:
        return f'{ratios[0]:.1f}x', ratios[0], 1
    return (f'{min(ratios):.1f}x to {max(ratios):.1f}x in {len(ratios)} full-depth runs',
            max(ratios), len(ratios))


def _lower_bound(s: _Scale) -> str:
    """What no implementation of LCP's two passes can go below, measured by the version
    (and so on the machine) the target is judged on where it has a row."""
    if not s.bound:
        return ''
    runs = s.current or s.full
    b = min(r['lcp_two_passes_bound'] for r in [r for r in s.bound if s.of_newest(r)]
            or s.bound)
    if any((r.get('cache') or {}).get('peak_current_bytes') for r in runs):
        return (f" (one pass with neurons that cost nothing: {b / 2:.2f}x the floor; these "
                f"runs kept convolution products for the second pass, so two full passes, "
                f"{b:.2f}x, are no lower bound)")
    thr = min(r['thresholds_s'] / r['floor_s'] for r in runs)
    return (f" (lower bound: thresholds {thr:.{2 if thr >= 0.01 else 3}f}x + two passes "
            f"with neurons that cost nothing {b:.2f}x = {thr + b:.2f}x the floor)")


def _time_rows(s: _Scale) -> List[Row]:
    """Thresholds + LCP within 2x the floor, judged on the runs of the newest code
    version (the ``code`` of its rows; older versions quoted apart), against both floors; channels last
    apart."""
    out = []
    if s.full:
        runs, older = s.current or s.full, [r for r in s.full if r not in s.current]
        text, worst, n = _spread(runs)
        text += (f'; older versions {_spread(older)[0]}' if s.current and older else '')
        cpu = [(r['cpu_user_s'], r['cpu_system_s']) for r in runs if r.get('cpu_system_s')]
        if cpu:      # where the time beyond the floor goes
            share = max(k / (u + k) for u, k in cpu)
            text += (f'; {100 * share:.0f}% of its CPU time in the kernel, zeroing the fresh '
                     'pages of new tensors (no allocator keeps freed blocks for reuse)')
        lo_hi, _, n_runs = _spread(runs)
        brief = lo_hi.split(' in ')[0] + ' the floor' + (f' ({n_runs} runs)' if n_runs > 1 else '')
        out.append(Row('calibration time, thresholds + LCP, full depth', '<= 2x the floor',
                       text + _lower_bound(s), 'yes' if worst <= 2 else 'no', SCALE, brief,
                       current=bool(s.current)))
        text_in, worst_in, n_in = _spread(runs, 'thresholds_lcp_over_floor_in_run')
        if worst_in is not None:
            out.append(Row('calibration time against the floor timed during calibration',
                           '<= 2x', text_in + (f' of the {len(runs)}' if n_in < len(runs)
                                               else ''),
                           'yes' if worst_in <= 2 else 'no', SCALE, text_in, headline=False,
                           current=bool(s.current)))
    if s.full_cl:
        cur = [r for r in s.full_cl if s.of_newest(r)] or s.full_cl
        t_def, w_def, _ = _spread(cur)
        t_cl, w_cl, _ = _spread(cur, 'thresholds_lcp_over_floor_channels_last')
        t_in, w_in, _ = _spread(cur, 'thresholds_lcp_over_floor_channels_last_in_run')
        text = f'against the floor: {t_def}'
        if w_cl is not None:
            text += f'; against the floor of an ANN run channels last too: {t_cl}'
        if w_in is not None:
            text += f'; against that floor timed during calibration: {t_in}'
        ok = w_def <= 2 and (w_cl is None or w_cl <= 2)
        out.append(Row('calibration time with --calib-channels-last (opt-in, not '
                       'bit-identical)', '<= 2x both floors', text, 'yes' if ok else 'no',
                       SCALE, t_def, headline=False,
                       current=any(s.of_newest(r) for r in s.full_cl)))
    return out


def _default_rows(s: _Scale) -> List[Row]:
    """Runs with default options (``--memory-budget auto``, the chunk and the cache's RAM
    chosen by the tool): the whole process's peak <= 6 GiB and within 10% of the peak it
    printed before calibrating."""
    out = []
    for r in sorted((r for r in s.conv if r.get('defaults') and r.get('memory_plan')),
                    key=lambda r: (r['T'], r['images'])):
        exp = r['memory_plan']['total'] / 2**30
        p, d = r['peak_rss_gib'], r['peak_rss_gib'] / exp - 1
        ok = p <= 6 and abs(d) <= 0.1
        where = (f"{r['detector']}, {r['images']} images (batch {r.get('calib_batch_size', 1)}) "
                 f"at T={r['T']}, "
                 f"{s.depth(r['calibrated_sites'])}")
        text = (f"{_gib(p)} {'<=' if p <= 6 else '>'} 6 GiB; {100 * d:+.0f}% against the "
                f"printed {_gib(exp)} ({'within' if abs(d) <= 0.1 else 'outside'} 10%; budget "
                f"{_gib(r['memory_plan']['budget'] / 2**30)}, chunk "
                f"{r['memory_plan']['chunk_size']} steps chosen)")
        out.append(Row(f'default options: peak memory, {where}',
                       '<= 6 GiB, within 10% of the printed estimate', text,
                       'yes' if ok else 'no', SCALE, f'{_gib(p)}, {100 * d:+.0f}% vs printed',
                       headline=r['calibrated_sites'] == r['sites'], current=True))
    return out


def scale_rows(res: dict) -> List[Row]:
    """The targets of seed 001's scale (issue 12) as rows: memory, time, simulation."""
    s = _Scale(res)
    out = _default_rows(s) + _memory_rows(s) + _time_rows(s)
    s32, s256 = (s.row('simulate', None, T) for T in (32, 256))
    if s32 and s256:
        d = s256['peak_rss_gib'] / s32['peak_rss_gib'] - 1
        out.append(Row('simulation peak memory at T=256 against T=32', 'within 10%',
                       f'{100 * d:+.0f}%', 'yes' if abs(d) <= 0.1 else 'no', SCALE,
                       f'{100 * d:+.0f}%', headline=False,
                       current=s.of_newest(s32) and s.of_newest(s256)))
    return out


# -- simulation speed ------------------------------------------------------------------


def _at32(r: dict, part: str = None) -> Optional[dict]:
    return (r.get(part, {}) if part else r).get('snn', {}).get('32')


def speed_runs_markdown(res: dict) -> str:
    """One row per detector and thread count: the backbone at T=32 against the ANN, the
    fused kernel against the Python loop, SpikingJelly, neurons free, channels last."""
    rows = []
    for r in res.get('rows', []):
        snn = _at32(r)
        if snn is None:
            continue
        sj = r.get('spikingjelly', {}).get('rows', {}).get('32')
        cl = _at32(r, 'channels_last')
        rows.append((r['detector'], r['threads'], f"{snn['over_T_ann']:.2f}x",
                     f"{r['python_loop']['fused_speedup']:.1f}x",
                     f"{sj['throughput_ratio']:.1f}x" + ('' if sj['identical'] else
                                                        ' (outputs DIFFER)') if sj else '-',
                     f"{r['neurons_free']['over_T_ann']:.2f}x" if 'neurons_free' in r else '-',
                     f"{cl['over_T_ann']:.2f}x" if cl else '-'))
    if not rows:
        return ''
    return _table(['detector', 'threads', 'SNN / (T x ANN) at T=32',
                   'fused kernel / Python loop', 'throughput / SpikingJelly',
                   'neurons free / (T x ANN)', 'channels last / (T x ANN)'], rows)


def _bound(rows, part) -> str:
    """SpikingJelly's time over our net's with neurons that cost nothing."""
    b = [x['neurons_free_ratio'] for r in rows
         for x in part(r).get('spikingjelly', {}).get('rows', {}).values()
         if 'neurons_free_ratio' in x]
    return (f' (bound with neurons that cost nothing on the same convolutions: '
            f'{min(b):.2f}x to {max(b):.2f}x)') if b else ''


def _worst_per_detector(rows, part=None) -> dict:
    worst = {}
    for r in rows:
        x = _at32(r, part)
        if x is not None:
            worst[r['detector']] = max(worst.get(r['detector'], 0), x['over_T_ann'])
    return worst


def _speed_target(what: str, worst: dict, headline: bool) -> Row:
    text = ', '.join(f'{d} {v:.2f}x' for d, v in worst.items())
    ok = max(worst.values()) <= 1.0
    return Row(what, '<= 1.0x T ANN backbone forwards', text, 'yes' if ok else 'no', SPEED,
               text, headline)


def _sj_target(what: str, rows, part, headline: bool) -> Optional[Row]:
    sj = [x['throughput_ratio'] for r in rows
          for x in part(r).get('spikingjelly', {}).get('rows', {}).values()]
    if not sj:
        return None
    text = f'{min(sj):.2f}x to {max(sj):.2f}x'
    return Row(what, ">= 2x SpikingJelly's throughput", text + _bound(rows, part),
               'yes' if min(sj) >= 2.0 else 'no', SPEED, text, headline)


def speed_rows(res: dict) -> List[Row]:
    """The simulation-speed targets (issues 13 and 17) as rows."""
    rows, out = res.get('rows', []), []
    worst = _worst_per_detector(rows)
    if worst:
        out.append(_speed_target('simulation time of the backbone at T=32', worst, True))
    sj = _sj_target('simulation throughput against SpikingJelly (same network)', rows,
                    lambda r: r, True)
    out += [sj] if sj else []
    cl = [r for r in rows if _at32(r, 'channels_last')]
    if cl:
        out.append(_speed_target('the same, --channels-last (opt-in, not bit-identical)',
                                 _worst_per_detector(cl, 'channels_last'), False))
        sj = _sj_target('throughput against SpikingJelly, --channels-last', cl,
                        lambda r: r['channels_last'], False)
        out += [sj] if sj else []
    full = [(r['detector'] + label, r['threads'], T, x['over_T_ann']) for r in rows
            for key, label in FULL_SCOPE_ROWS.values()
            for T, x in r.get('full_scope', {}).get(key, {}).items()]
    if full:
        worst = max(full, key=lambda f: f[3])
        text = (f'{min(f[3] for f in full):.2f}x to {worst[3]:.2f}x; highest: {worst[0]} '
                f'({_threads(worst[1])}) at T={worst[2]}')
        out.append(Row('fully spiking detectors (scope full), T=8 and 32',
                       '<= 1.5x T ANN detector forwards', text,
                       'yes' if worst[3] <= 1.5 else 'no', SPEED, text))
    return out


def scale_summary(res: dict) -> str:
    """Seed 001's scale as markdown: its targets, then its runs of the current code."""
    return rows_markdown(scale_rows(res)) + '\n' + scale_runs_markdown(res)
