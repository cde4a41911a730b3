"""Metric names as tables show them, the main metric of a result row, and its plot
against T."""
import os
import os.path as osp
from typing import Dict, List, Optional


#: short names of the metrics shown in tables, by metric key suffix
COCO_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')
SHORT = {'bbox_mAP': 'AP', 'bbox_mAP_50': 'AP50', 'bbox_mAP_75': 'AP75', 'bbox_mAP_s': 'APs',
         'bbox_mAP_m': 'APm', 'bbox_mAP_l': 'APl', 'mAP': 'mAP', 'AP50': 'AP50',
         'top1': 'top1', 'top5': 'top5', 'accuracy_top-1': 'top1', 'accuracy_top-5': 'top5'}


#: metric keys reported in percent (mmpretrain's Accuracy, mmcls 0.x)
PERCENT_KEYS = ('accuracy/top1', 'accuracy/top5', 'accuracy_top-1', 'accuracy_top-5')


def simplify_metrics(metrics: Dict[str, float]) -> Dict[str, float]:
    """``{'coco/bbox_mAP': 0.5, ...}`` -> ``{'AP': 0.5, ...}`` (unknown keys kept).

    Everything is a fraction: accuracies that mmpretrain reports in % are divided by 100.
    """
    out = {}
    for k, v in metrics.items():
        name = k.split('/')[-1]
        if isinstance(v, (int, float)):
            v = float(v)
            if k in PERCENT_KEYS or name in PERCENT_KEYS:
                v /= 100.0
            out[SHORT.get(name, name)] = v
    return out


#: the main metric of a row, by kind: COCO AP, VOC mAP, a classifier's top-1
MAIN_METRICS = ('AP', 'mAP', 'top1')


def main_metric_key(rows) -> str:
    """The main metric's key of ``rows`` (a row or a list of rows); ``'AP'`` if none."""
    rows = [rows] if isinstance(rows, dict) else rows
    return next((k for k in MAIN_METRICS if any(k in r for r in rows)), 'AP')


def main_metric(row: dict) -> Optional[float]:
    return row.get(main_metric_key(row))


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
    save_metric_plot(fig, ax, path, ylabel, title)


def save_metric_plot(fig, ax, path: str, ylabel: str, title: str = '') -> None:
    """Label, lay out and write a metric plot (``<ylabel> (%)``) atomically, then close it."""
    import matplotlib.pyplot as plt
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
