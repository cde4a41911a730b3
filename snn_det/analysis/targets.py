"""Targets of the benchmarks, stated as data in their configs and checked against the rows.

A benchmark config (``configs/benchmarks/*.py``) lists its targets::

    targets = [
        dict(what='Baseline, every detector, T=128', target='>= 90% of the ANN',
             check=dict(type='ratio_at', method='MMSE/channel+shift', T=128, bound=0.90)),
    ]

``check.type`` names a check registered in :data:`~snn_det.registry.TARGET_CHECKS`
(:mod:`.target_checks`); its other keys are the check's arguments.  A check returns a
function of a results dict (:mod:`.results`) that gives a :class:`Measured`.

Rows with 95 % bootstrap intervals are judged by them
(:func:`~snn_det.evaluation.target_verdict`: met / within noise / missed); two rows tie
when their intervals overlap (:func:`~snn_det.evaluation.intervals_overlap`).  Rows
without intervals (results that record no split were measured on ``val``) are judged on
the unrounded point estimates (yes / no, ties below ``TIE``), and a shown percentage
gets more decimals when rounding would put it on the other side of its bound.
"""
import os.path as osp
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from ..registry import TARGET_CHECKS, get_registered
from ..utils.provenance import ROOT

__all__ = ['Measured', 'Row', 'Target', 'targets_of', 'targets_rows', 'targets_markdown',
           'rows_markdown', 'met_text']


class Row(NamedTuple):
    """One checked target as a table row: ``measured`` in full (the results index),
    ``brief`` in a few words (the README's summary, where ``headline``)."""
    what: str
    target: str
    measured: str
    met: str                    # 'yes', 'no' (point estimates), 'met', 'within noise',
                                # 'missed' (intervals), 'partly not run' or 'not run'
    benchmark: str
    brief: str = ''
    headline: bool = True       # in the README's summary
    current: bool = True        # measured with the newest code version (docs pages show these)


class Measured(NamedTuple):
    """What a target's check found: the full text, the verdict (``True`` / ``False`` on
    point estimates, a :mod:`~snn_det.evaluation.verdict` word on intervals, ``None``
    partly not run), the few words."""
    text: str
    ok: object
    brief: str


class Target(NamedTuple):
    benchmark: str
    what: str
    target: str
    check: Callable[[dict], Measured]


def met_text(ok) -> str:
    if isinstance(ok, str):                 # met / within noise / missed
        return ok
    return {True: 'yes', False: 'no', None: 'partly not run'}[ok]


def _check(spec: dict) -> Callable[[dict], Measured]:
    spec = dict(spec)
    factory = get_registered(TARGET_CHECKS, spec.pop('type'), 'target check')
    return factory(**spec)


def targets_of(result: dict, root: str = ROOT) -> List[Target]:
    """The targets the benchmark config of ``result`` states (``targets = [...]``)."""
    path = result.get('config')
    if not path or not path.endswith('.py'):
        return []
    path = path if osp.isabs(path) else osp.join(root, path)
    if not osp.isfile(path):
        return []
    with open(path) as f:       # a config that states targets (not e.g. tools/run_default.py)
        if not re.search(r'^targets\s*=', f.read(), re.M):
            return []
    from mmengine.config import Config
    specs = Config.fromfile(path).to_dict().get('targets', [])
    return [Target(result['name'], t['what'], t['target'], _check(t['check'])) for t in specs]


def targets_rows(results: Dict[str, dict],
                 targets: Optional[Sequence[Target]] = None) -> List[Row]:
    """One :class:`Row` per target (``met``: a verdict word, 'yes' / 'no' / 'partly not
    run' / 'not run'); by default the targets of each result's own config."""
    if targets is None:
        targets = [t for name in results for t in targets_of(results[name])]
    out = []
    for t in targets:
        if t.benchmark not in results:
            out.append(Row(t.what, t.target, 'not run', 'not run', t.benchmark, 'not run'))
            continue
        m = t.check(results[t.benchmark])
        out.append(Row(t.what, t.target, m.text, met_text(m.ok), t.benchmark, m.brief))
    return out


def rows_markdown(rows: Sequence[Row], link: Optional[Callable[[str], str]] = None,
                  brief: bool = False) -> str:
    """The rows as a table: what, target, measured (``brief``: in a few words), met, and
    with ``link`` a column linking each row's benchmark."""
    head = '| what | target | measured | met |' + (' from |' if link else '')
    lines = [head, '|---' * (5 if link else 4) + '|']
    for r in rows:
        cells = [r.what, r.target, r.brief if brief and r.brief else r.measured, r.met]
        if link:
            cells.append(f'[{r.benchmark}]({link(r.benchmark)})')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def targets_markdown(results: Dict[str, dict], link: Callable[[str], str] = None,
                     targets: Optional[Sequence[Target]] = None) -> str:
    """The targets as a table (measured in full)."""
    return rows_markdown(targets_rows(results, targets), link or (lambda name: name))
