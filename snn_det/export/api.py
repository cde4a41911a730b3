"""Export a converted config + checkpoint (written by tools/convert.py) to a NIR file,
and check the file in independent runtimes on a calibration image."""
import copy
import json
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config

from ..apis.convert import ensure_custom_imports, is_spiking_cfg, unwrap
from ..utils.checkpoint import write_text_atomic
from .nir import NIRExportError, export_nir


def load_converted(cfg: Config, checkpoint: str, work_dir: str):
    """The converted model of ``cfg`` with ``checkpoint`` loaded (through mmengine's Runner,
    as tools/test.py does); refuses an ANN config with the command that converts it."""
    from mmengine.runner import Runner
    bb = cfg.model.get('backbone') or {}
    if not (is_spiking_cfg(bb) and bb.get('converted_T')):
        raise NIRExportError('this config is not a converted one: convert it first with '
                             'tools/convert.py CONFIG CHECKPOINT --T 32 --shift bias, then '
                             'export the written <name>_snn.py / _snn.pth')
    ensure_custom_imports(cfg)
    cfg.work_dir = osp.join(work_dir, 'logs')
    cfg.load_from = checkpoint
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    model = unwrap(runner.model)
    model.eval()
    return model, runner


def export_converted(cfg: Config, checkpoint: str, T: int, out: str, work_dir: str,
                     input: str = 'image', check: Sequence[str] = (), seed: int = 0,
                     runner_dir: Optional[str] = None, eval_images: int = 0) -> dict:
    """Export the spiking net of ``T`` steps to ``out``; with ``check`` (runtime names),
    simulate the file read back by ``nir.read`` on one calibration image and write the
    comparison to ``<work_dir>/nir_check.json``, with the top-1 of each runtime on
    ``eval_images`` test images (classifiers; :func:`classifier_accuracy`).  Returns a
    summary."""
    import nir

    from ..apis.calib_data import build_calib_batches
    model, _ = load_converted(cfg, checkpoint, runner_dir or work_dir)
    bb = model.backbone
    if f'T{T}' not in bb.snn:
        raise NIRExportError(f'no spiking net for T={T}: this checkpoint was converted for '
                             f'T={bb.converted_T}')
    net = bb.snn[f'T{T}']
    image = build_calib_batches(cfg, model, 1, 1, seed)[0][:1].to(torch.float32)
    meta = dict(source_config=osp.abspath(cfg.filename or ''),
                source_checkpoint=osp.abspath(checkpoint),
                conversion=json.dumps(bb.conversion.to_dict()))
    existed = osp.exists(out)
    export_nir(net, out, tuple(image.shape[1:]), input, meta)
    summary = dict(file=osp.abspath(out), T=T, input=input, image_shape=list(image.shape[1:]),
                   nodes=None, sites=len(net.graph.sites))
    try:
        graph = nir.read(out)
        summary['nodes'] = len(graph.nodes)
        if check:
            from .check import check_nir
            summary['check'] = check_nir(net, graph, image, T, tuple(check))
            if eval_images:
                summary['check']['accuracy'] = classifier_accuracy(
                    model, cfg, net, graph, T, tuple(check), eval_images)
            path = osp.join(work_dir, 'nir_check.json')
            write_text_atomic(json.dumps(summary, indent=1) + '\n', path)
            summary['check_file'] = path
    except BaseException:      # a failed check leaves no new file behind
        if not existed and osp.exists(out):
            os.remove(out)
        raise
    return summary


@torch.no_grad()
def classifier_accuracy(model, cfg: Config, net, graph, T: int, runtimes: Sequence[str],
                        num_images: int) -> dict:
    """Top-1 on the first ``num_images`` images of the test split: the ANN, snn-det's SNN,
    and each runtime's simulation of the file, each readout through the model's own neck
    and head (the analog part after the backbone)."""
    from mmengine.runner import Runner

    from .check import graph_input, runtime_module, runtime_readout
    if getattr(model, 'head', None) is None or hasattr(model, 'bbox_head') \
            or hasattr(model, 'roi_head'):
        raise NIRExportError('--eval-images: top-1 through a runtime is measured for '
                             'classifiers only (a detector\'s mAP through one is not done)')
    loader = Runner.build_dataloader(copy.deepcopy(cfg.test_dataloader))
    modules = {rt: runtime_module(graph, rt) for rt in runtimes}
    correct = dict.fromkeys(['ann', 'snn_det', *runtimes], 0)
    n = 0

    def top1(feats) -> int:
        return int(model.head(model.neck(tuple(feats))).argmax(1))
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        x, samples = data['inputs'].to(torch.float32), data['data_samples']
        for i in range(x.shape[0]):
            if n >= num_images:
                break
            img, label = x[i:i + 1], int(samples[i].gt_label.reshape(-1)[0])
            correct['ann'] += top1(model.backbone.ann(img)) == label
            correct['snn_det'] += top1(net.simulate(img, T)) == label
            inp = graph_input(net, img, graph)
            for rt in runtimes:
                correct[rt] += top1(runtime_readout(graph, inp, T, rt, modules[rt])) == label
            n += 1
        if n >= num_images:
            break
    return dict(images=n, top1={k: v / max(n, 1) for k, v in correct.items()})


def format_check(summary: dict) -> str:
    """One line per runtime: identical, or how much differs."""
    lines = []
    acc = (summary.get('check') or {}).get('accuracy')
    if acc:
        lines.append(f'top-1 on {acc["images"]} test images: ' + ', '.join(
            f'{k} {100 * v:.1f}%' for k, v in acc['top1'].items()))
    for rt, r in (summary.get('check') or {}).items():
        if not isinstance(r, dict) or 'identical' not in r:
            continue
        err = ', '.join(f'{e:.2e}' for e in r['readout_rel_error'])
        same = sum(1 for s in r['sites'].values() if s['identical'])
        lines.append(f'{rt}: spikes identical at {same}/{len(r["sites"])} sites; differing '
                     f'element-steps '
                     f'{100 * r["differing_share"]:.4f}%; spikes {r["spikes_runtime"]:.0f} '
                     f'(snn-det {r["spikes_snn_det"]:.0f}); readout relative error {err}')
    return '\n'.join(lines)
