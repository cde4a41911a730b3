"""A peer's spiking backbone evaluated inside the detector: same neck, head, data, metric.

:func:`evaluate_peer` converts the ANN backbone of a runner's model (a
``SpikingBackbone``) with a peer, installs the peer's :class:`~.base.PeerNet` as the
backbone's converted network, and evaluates every T in one pass over the test set
(:class:`~snn_det.engine.MultiTTestLoop`: one simulation to the largest T, read out at
each).  A network the peer cannot trace or express gives one row with ``error`` (the
peer's own message, one line) instead of metrics; nothing is raised.
"""
import time
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

from torch import Tensor

from .base import build_peer, one_line


def evaluate_peer(runner, batches: Sequence[Tensor], peer_cfg: dict, T_list: Sequence[int],
                  detector: str, method: str,
                  on_loop: Optional[Callable] = None) -> Tuple[List[dict], List[dict]]:
    """Rows (one per T, or one ``error`` row) and the conversion time of one peer.

    ``on_loop(loop)`` is called with the ``MultiTTestLoop`` before it runs (e.g. to add
    a metric beside each T's evaluator)."""
    from ..utils.wrappers import unwrap
    from ..analysis.metrics import simplify_metrics
    from ..engine.multi_t_test_loop import MultiTTestLoop
    bb = unwrap(runner.model).backbone
    peer = build_peer(peer_cfg)
    T_list = sorted({int(t) for t in T_list})
    info = dict(detector=detector, method=method, peer=f'{peer.library} {peer.version()}: '
                                                       f'{peer.describe()}')
    t0 = time.perf_counter()
    try:
        net = peer.convert(bb.ann, batches)
    except Exception as e:        # the peer's refusal is a result, recorded as it gave it
        print(f'[peers] {detector} | {method}: not converted: {one_line(e)}', flush=True)
        return [dict(info, T=None, error=one_line(e))], []
    conv_s = time.perf_counter() - t0
    net.num_steps = max(T_list)
    bb.snn.clear()
    bb.add_spiking_net(net)
    bb.set_mode('snn', T_list[0])
    t0 = time.perf_counter()
    try:
        loop = MultiTTestLoop(runner, T_list)
        if on_loop is not None:
            on_loop(loop)
        results = loop.run()
    except Exception as e:        # converted, but its network does not run
        traceback.print_exc()
        return [dict(info, T=None, error='simulation: ' + one_line(e))], []
    finally:
        bb.snn.clear()
        bb.set_mode('ann')
    secs = round(time.perf_counter() - t0, 1)
    rows = [dict(info, T=T, seconds=secs, shared_pass=T_list, convert_seconds=round(conv_s, 1),
                 **_metrics(results[T])) for T in T_list]
    times = [dict(detector=detector, method=method, T=None, seconds=round(conv_s, 2))]
    return rows, times


def _metrics(metrics: dict) -> dict:
    """The row's metrics; a detector that detected nothing at all (mmdet's CocoMetric then
    returns no metric) scores 0 on every COCO metric."""
    from ..analysis.metrics import COCO_KEYS, SHORT, simplify_metrics
    m = simplify_metrics(metrics)
    if not any(k in m for k in ('AP', 'mAP', 'top1')):
        m.update({SHORT[k]: 0.0 for k in COCO_KEYS}, note='no detections')
    return m
