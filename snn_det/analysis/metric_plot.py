"""The main metric of a result row, and its plot against T."""
import os
import os.path as osp
from typing import Dict, List, Optional


def main_metric(row: dict) -> Optional[float]:
    for key in ('AP', 'mAP', 'top1'):
        if key in row:
            return row[key]
    return None


def plot_metric_vs_T(series: Dict[str, List[tuple]], path: str, ann: Optional[float] = None,
                     ylabel: str = 'mAP', title: str = '') -> None:
    """Line plot of a metric against T (log2 axis), one line per series."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in series.items():
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker='o', label=name)
    if ann is not None:
        ax.axhline(100 * ann, color='k', linestyle='--', label='ANN')
    ax.set_xscale('log', base=2)
    ax.set_xlabel('time steps T')
    ax.set_ylabel(f'{ylabel} (%)')
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
