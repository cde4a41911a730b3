"""The table ``tools/test.py`` prints: the ANN, then the SNN at each T, with intervals."""
from typing import List, Optional, Sequence

from ..evaluation.intervals import INTERVAL_KEYS, interval_text
from .metrics import main_metric, main_metric_key
from .results import ap_ci


def format_table(rows: List[dict], keys: Optional[Sequence[str]] = None) -> str:
    """Markdown table of rows (model, T, metrics); mAP-like metrics shown in %.  The % of the
    ANN is the rows' unrounded ``ratio`` where the bootstrap gave one (mmdet rounds AP to
    3 digits: at an AP of 0.007 that alone moves the ratio by up to 14 %)."""
    if not rows:
        return ''
    if keys is None:
        keys = [k for k in rows[0] if k not in ('model', 'T', 'calib_T', 'seconds',
                                                'shared_pass') + INTERVAL_KEYS]
    cis = any(ap_ci(r) for r in rows)
    main = main_metric_key(rows)
    head = ['model', 'T'] + list(keys) + [f'{main} 95% CI'] * cis + ['% of ANN'] \
        + ['% of ANN 95% CI'] * cis + ['time (s)']
    ann = next((main_metric(r) for r in rows if r['model'] == 'ANN'), None)
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        t = '' if r.get('T') is None else str(r['T'])
        if r.get('calib_T') not in (None, r.get('T')):
            t += f' (calib T={r["calib_T"]})'
        vals = [f'{100 * r[k]:.1f}' if isinstance(r.get(k), float) and r[k] <= 1.0
                else str(r.get(k, '')) for k in keys]
        m = main_metric(r)
        if r.get('ratio') is not None:      # paired, from the unrounded per-image evaluation
            keep = f'{100 * r["ratio"]:.1f}'
        else:                               # mmdet's metrics (rounded to 3 digits)
            keep = f'{100 * m / ann:.1f}' if (ann and m is not None) else ''
        secs = str(r.get('seconds', ''))
        if r.get('shared_pass'):
            secs += f' (one pass for T={"/".join(map(str, r["shared_pass"]))})'
        ci = [interval_text(ap_ci(r))] * cis
        ratio_ci = [interval_text(r.get('ratio_ci'))] * cis
        lines.append('| ' + ' | '.join([r['model'], t] + vals + ci + [keep] + ratio_ci + [secs])
                     + ' |')
    return '\n'.join(lines)
