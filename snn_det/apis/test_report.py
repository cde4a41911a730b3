"""What ``tools/test.py`` reports after evaluating: the table, its JSON, mAP against T and,
beside every SNN row, the energy per image against the ANN's on a few test images.

Energy follows :mod:`snn_det.analysis.energy` (4.6 pJ per MAC where a layer takes analog
input, 0.9 pJ per synaptic operation where it takes spikes; 45 nm figures, memory
traffic not counted): the spiking scope's MACs and SOPs at each T, measured by simulating
the converted network on the first ``energy_images`` test images, plus the ANN parts after
the scope, against the whole ANN's MACs on the same images.
"""
import json
import os.path as osp
from typing import List, Optional, Sequence

import torch

from ..analysis.energy import compare_all, energy_report, plot_metric_vs_energy
from ..analysis.firing import measure_firing
from ..utils.checkpoint import write_text_atomic
from ..utils.provenance import provenance
from ..utils.wrappers import unwrap
from .evaluate import format_table, main_metric, plot_metric_vs_T, save_rows


def test_images(runner, n: int) -> Optional[torch.Tensor]:
    """The first ``n`` test images as the detector's data preprocessor makes them (one
    tensor; images of a batch share its padded size)."""
    model = unwrap(runner.model)
    xs, shape = [], None
    for data in runner.test_dataloader:
        with torch.no_grad():
            x = model.data_preprocessor(data, False)['inputs']
        for img in x:
            if shape is None:
                shape = img.shape
            if img.shape == shape:           # the first batch's padded size only
                xs.append(img)
            if len(xs) == n:
                return torch.stack(xs)
    return torch.stack(xs) if xs else None


def energy_per_T(runner, T_list: Sequence[int], images: int, chunk_size=None) -> dict:
    """``{T: compare(...)}``: each T's SNN energy per image beside the ANN's
    (:func:`~snn_det.analysis.energy.compare_all`) on the first ``images`` test images,
    and the firing rates measured on the way (``'firing'``)."""
    model = unwrap(runner.model)
    bb = model.backbone
    x = test_images(runner, images)
    if x is None:
        return {}
    firing = {T: measure_firing(bb.spiking_net(T), [x], T, chunk_size) for T in T_list}
    energy = compare_all(model, [x], firing, bb.scope)
    return dict(energy=energy, firing=firing, size=tuple(x.shape[-2:]), images=int(x.shape[0]))


def write_test_report(runner, rows: List[dict], work_dir: str, meta: dict,
                      energy_images: int = 2, chunk_size=None, title: str = '') -> List[str]:
    """Print the table and write ``snn_test_results.json`` (with the provenance: commit,
    versions, machine) and ``snn_metric_vs_T.png``
    under ``work_dir``; with ``energy_images`` > 0, also print each T's energy against the
    ANN's and write ``snn_energy.json`` and ``snn_metric_vs_energy.png``.  Returns the
    paths written."""
    print('\n' + format_table(rows))
    bb = unwrap(runner.model).backbone
    out_json = osp.join(work_dir, 'snn_test_results.json')
    save_rows(rows, out_json, dict(meta, conversion=bb.conversion.to_dict(),
                                   provenance=provenance()))
    written = [out_json]
    snn = [(r['T'], main_metric(r)) for r in rows if r['model'] == 'SNN']
    ann = next((main_metric(r) for r in rows if r['model'] == 'ANN'), None)
    ylabel = 'top-1' if any('top1' in r for r in rows) else 'AP'
    label = 'SNN (' + bb.conversion.describe() + ')'
    if snn and snn[0][1] is not None:
        png = osp.join(work_dir, 'snn_metric_vs_T.png')
        plot_metric_vs_T({label: snn}, png, ann, ylabel=ylabel, title=title)
        written.append(png)
    if energy_images > 0 and snn:
        e = energy_per_T(runner, sorted({T for T, _ in snn}), energy_images, chunk_size)
        if e:
            print('\n' + energy_report(e['firing'], e['energy'], e['size']))
            path = osp.join(work_dir, 'snn_energy.json')
            write_text_atomic(json.dumps(dict(images=e['images'], size=list(e['size']),
                                              per_T={str(T): c for T, c in
                                                     e['energy'].items()}), indent=1) + '\n',
                              path)
            written.append(path)
            if snn[0][1] is not None and ann is not None:
                ann_mj = next(iter(e['energy'].values()))['ann_energy_mJ_per_image']['full']
                pts = [(e['energy'][T]['model_energy_mJ'], m, T) for T, m in snn]
                png = osp.join(work_dir, 'snn_metric_vs_energy.png')
                plot_metric_vs_energy({label: pts}, (ann_mj, ann), png, ylabel=ylabel,
                                      title=title)
                written.append(png)
    print('\nsaved ' + ', '.join(written))
    return written
