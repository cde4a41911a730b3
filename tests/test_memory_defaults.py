"""Calibration without ``--chunk-size``: the tool chooses the time chunk that fits the
free memory (snn_det/runtime/memory.py, choose_chunk_size) and says so."""
import torch

from helpers import tiny_spiking
from snn_det.runtime import memory
from snn_det.runtime.spike_codes import bitwise_equal
from snn_det.conversion import ConversionConfig
from snn_det.pipeline import convert_backbone, observe


def _observers(T=16):
    torch.manual_seed(0)                   # the same weights and images every call
    bb = tiny_spiking('resnet18', T=T)
    x = torch.rand(2, 3, 32, 32)
    obs = observe(bb.graph, [x], None, 4096, 0)
    return bb, x, obs


def test_the_chosen_chunk_is_the_longest_divisor_of_T_that_fits():
    _, _, obs = _observers()
    calib = ['bias']
    held = memory._held_bytes(obs, 16, calib, 1, None, None, False)
    largest = max(o.largest_batch for o in obs.values())

    def need(K):
        return memory.estimate_calibration_bytes(largest, 16, K, calib, None, held)['total']
    # everything fits: one chunk of all T steps (None), as without a memory check
    kw = dict(keeps_products=False)
    assert memory.choose_chunk_size(obs, 16, calib, 1, None, available=1 << 40, **kw) is None
    # room for K=4 but not K=8 (the estimate grows with K): 4, a divisor of 16
    free = int((need(4) + need(8)) / 2 / 0.75)
    assert need(4) <= free * 0.75 < need(8)
    assert memory.choose_chunk_size(obs, 16, calib, 1, None, available=free, **kw) == 4
    # not even one step fits: 1, and the check then refuses naming what else to change
    assert memory.choose_chunk_size(obs, 16, calib, 1, None, available=1, **kw) == 1


def test_a_default_run_calibrates_in_the_chunk_it_chose(monkeypatch):
    """With little free memory a run without a chunk size calibrates in the chunk the
    tool chose: the same network bit for bit as the user passing that chunk size."""
    bb, x, obs = _observers()
    calib = ['bias']
    held = memory._held_bytes(obs, 16, calib, 1, None, None, True)
    largest = max(o.largest_batch for o in obs.values())
    free = int(memory.estimate_calibration_bytes(largest, 16, 4, calib, None, held)['total']
               / 0.75) + 1
    monkeypatch.setattr(memory, 'available_bytes', lambda device=None: free)
    chosen = memory.choose_chunk_size(obs, 16, calib, 1, None)
    assert chosen is not None and chosen < 16 and 16 % chosen == 0
    cfg = ConversionConfig(threshold='max', calib=calib)
    convert_backbone(bb, [x], [16], cfg, progress=False)
    auto = bb.spiking_net(16).state_dict()
    monkeypatch.setattr(memory, 'available_bytes', lambda device=None: 1 << 40)
    bb2, _, _ = _observers()
    convert_backbone(bb2, [x], [16], cfg, chunk_size=chosen, progress=False)
    explicit = bb2.spiking_net(16).state_dict()
    for k in auto:
        assert bitwise_equal(auto[k], explicit[k]), k
