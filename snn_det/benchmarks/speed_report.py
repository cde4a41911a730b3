"""The markdown tables of the simulation-speed benchmark (:mod:`.speed`)."""
from ..analysis.results import FULL_SCOPE_ROWS

__all__ = ['markdown']


def _spikingjelly_table(rows) -> list:
    """Markdown lines of the SpikingJelly comparison for ``[(row, its comparison), ...]``."""
    lines = ['| detector | threads | T | outputs identical | ours (s) | SpikingJelly (s) | '
             'our throughput / SpikingJelly | bound: neurons free (s) | bound: throughput / '
             'SpikingJelly |', '|---|---|---|---|---|---|---|---|---|']
    for r, sj in rows:
        if 'error' in sj:
            lines.append(f"| {r['detector']} | {r['threads']} | - | {sj['error']} | | | | | |")
            continue
        for T, q in sj['rows'].items():
            lines.append(f"| {r['detector']} | {r['threads']} | {T} | "
                         f"{'yes' if q['identical'] else '**no**'} | {q['ours_s']:.3f} | "
                         f"{q['spikingjelly_s']:.3f} | {q['throughput_ratio']:.2f}x | "
                         + (f"{q['neurons_free_s']:.3f} | {q['neurons_free_ratio']:.2f}x |"
                            if 'neurons_free_s' in q else '- | - |'))
    return lines


def markdown(res: dict) -> str:
    lines = [f"# {res['name']}: simulation speed of the spiking backbones", '', res['note'], '',
             '## SNN backbone against the ANN', '',
             '| detector | threads | ANN backbone (s) | ' + ' | '.join(
                 f'T={T}: s (/ T x ANN)' for T in res['T']) + ' | Python loop at T='
             f"{res['python_loop_T']}: s (/ T x ANN) | fused kernel speed-up | neurons free "
             f"at T={res['python_loop_T']}: s (/ T x ANN) |",
             '|---|---|---|' + '---|' * len(res['T']) + '---|---|---|']
    for r in res['rows']:
        cells = [f"{r['snn'][str(T)]['seconds']:.3f} ({r['snn'][str(T)]['over_T_ann']:.2f})"
                 for T in res['T']]
        py = r['python_loop']
        lines.append(f"| {r['detector']} | {r['threads']} | {r['ann_s']:.4f} | "
                     + ' | '.join(cells) + f" | {py['seconds']:.3f} ({py['over_T_ann']:.2f}) | "
                     f"{py['fused_speedup']:.2f}x | " + (
                         f"{r['neurons_free']['seconds']:.3f} ({r['neurons_free']['over_T_ann']:.2f}) |"
                         if 'neurons_free' in r else '- |'))
    lines += ['', 'Neurons free: the same net with every neuron replaced by one that costs '
              'nothing (its input passes through): the time of what is not a neuron '
              '(convolutions, additions, pooling, readout), the floor below any neuron '
              'implementation on this network.', '',
              '## Peak memory of the simulation against T (GiB, whole process; '
              'in brackets: above the RSS before it)', '',
              '| detector | threads | ' + ' | '.join(f'T={T}' for T in res['T']) + ' |',
              '|---|---|' + '---|' * len(res['T'])]
    for r in res['rows']:
        lines.append(f"| {r['detector']} | {r['threads']} | " + ' | '.join(
            f"{r['snn'][str(T)]['peak_rss_gib']:.2f} (+{r['snn'][str(T)]['peak_over_start_gib']:.2f})"
            for T in res['T']) + ' |')
    lines += ['', '## The same network with SpikingJelly IFNode (layer-wise thresholds)', '',
              'Bound: SpikingJelly against our net with neurons that cost nothing (paired '
              'runs): no neuron implementation on the same convolutions can be faster than '
              'SpikingJelly by more than this.', '']
    lines += _spikingjelly_table([(r, r['spikingjelly']) for r in res['rows']])
    cl_rows = [r for r in res['rows'] if 'channels_last' in r]
    if cl_rows:
        lines += ['', '## Channels-last layout (`tools/test.py --channels-last`)', '',
                  'The same converted nets simulated with the image in channels-last memory '
                  "layout (oneDNN's faster CPU convolutions; the fused kernels read it "
                  'directly). In brackets: the time over T x the ANN backbone in the default '
                  'layout / over T x the ANN backbone in channels-last layout too. Not '
                  "bit-identical to the default layout's readout (largest difference at T=32 "
                  'given: convolutions sum in another order, so a spike may move at a tie).', '',
                  '| detector | threads | ANN backbone, channels last (s) | ' + ' | '.join(
                      f'T={T}: s (/ default ANN, / channels-last ANN)' for T in res['T'])
                  + ' | largest readout difference at T=32 |',
                  '|---|---|---|' + '---|' * len(res['T']) + '---|']
        for r in cl_rows:
            c = r['channels_last']
            cells = [f"{c['snn'][str(T)]['seconds']:.3f} ({c['snn'][str(T)]['over_T_ann']:.2f}, "
                     f"{c['snn'][str(T)]['over_T_ann_channels_last']:.2f})" for T in res['T']]
            diff = c['snn'].get('32', {}).get('max_abs_diff')
            lines.append(f"| {r['detector']} | {r['threads']} | {c['ann_s']:.4f} | "
                         + ' | '.join(cells)
                         + (f' | {diff:.3g} |' if diff is not None else ' | - |'))
        lines += ['', 'SpikingJelly IFNode on the same network, both in channels-last layout:', '']
        lines += _spikingjelly_table([(r, r['channels_last']['spikingjelly']) for r in cl_rows])
    full_rows = [r for r in res['rows'] if 'full_scope' in r]
    if full_rows:
        T_full = sorted({int(T) for r in full_rows for T in r['full_scope']['rows']})
        lines += ['', '## Fully spiking detectors (scope full) against the ANN detector', '',
                  "SNN: backbone, neck and head up to the prediction convolutions simulated "
                  "T steps; ANN: mmdet's own detector forward (backbone, neck, head; no box "
                  'decoding or NMS in either).', '',
                  '| detector | threads | spiking sites | ANN detector (s) | ' + ' | '.join(
                      f'T={T}: s (/ T x ANN)' for T in T_full) + ' |',
                  '|---|---|---|---|' + '---|' * len(T_full)]
        for r in full_rows:
            f = r['full_scope']
            for key, label in FULL_SCOPE_ROWS.values():
                if key not in f:
                    continue
                lines.append(f"| {r['detector']}{label} | {r['threads']} | {f['sites']} | "
                             f"{f['ann_detector_s']:.4f} | " + ' | '.join(
                                 f"{f[key][str(T)]['seconds']:.3f} "
                                 f"({f[key][str(T)]['over_T_ann']:.2f})"
                                 if str(T) in f[key] else '-' for T in T_full) + ' |')
    lines += ['', f"Machine: {res['machine']}. Generated by tools/speed_benchmark.py from "
              f"{res['config']}.", '']
    return '\n'.join(lines)
