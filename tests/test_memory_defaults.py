"""Calibration without ``--chunk-size``: the tool chooses the time chunk that fits the
free memory (snn_det/runtime/memory.py, choose_chunk_size) and says so."""
import pytest
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
    held = memory.held_bytes(obs, 16, calib, 1, None, None, False)
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
    held = memory.held_bytes(obs, 16, calib, 1, None, None, True)
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


# --- one memory budget for the whole run (--memory-budget) -------------------------------

def test_the_plan_shares_the_budget_between_process_chunk_and_cache():
    """plan_calibration: the longest chunk that leaves the cache all it wants, the cache the
    rest; the parts add up to the expected peak and never pass the budget."""
    largest, T, MiB = 1 << 20, 32, 1 << 20
    chunk = lambda K: memory.CHUNK_COPIES * K * largest * 4     # noqa: E731
    process, held = 500 * MiB, 100 * MiB
    # room for K=8 and the whole cache, not for K=16 with it
    budget = process + chunk(8) + held + 10 * MiB
    plan = memory.plan_calibration(largest, held, T, ['bias'], budget, process)
    assert plan['chunk_size'] == 8 and plan['fits']
    assert plan['cache_budget'] == budget - process - chunk(8)
    p = plan['parts']
    assert p == dict(process=process, chunk=chunk(8), cache=held, total=p['total'])
    assert p['total'] == process + chunk(8) + held <= budget
    # the cache cannot have all it wants: the chunk takes at most half of what is left,
    # the cache the rest (its files take what is over)
    plan = memory.plan_calibration(largest, 10 * budget, T, ['bias'], budget, process)
    room = budget - process
    assert chunk(plan['chunk_size']) <= room / 2 < chunk(2 * plan['chunk_size'])
    assert plan['parts']['total'] == budget
    # what the user set is kept; the whole of T in one chunk is None
    plan = memory.plan_calibration(largest, held, 4, ['bias'], 1 << 40, process)
    assert plan['chunk_size'] is None
    plan = memory.plan_calibration(largest, held, T, ['bias'], budget, process, chunk_size=2,
                                   cache_budget=7 * MiB)
    assert plan['chunk_size'] == 2 and plan['cache_budget'] == 7 * MiB
    assert plan['parts']['cache'] == 7 * MiB
    # fine calibration keeps one site's T steps (BPTT_COPIES of them) besides
    plan = memory.plan_calibration(largest, held, T, ['bias', 'fc'], 1 << 40, process)
    assert plan['parts']['bptt'] == memory.BPTT_COPIES * T * largest * 4


def test_a_budget_below_the_smallest_plan_is_refused_naming_the_fix():
    MiB = 1 << 20
    # one step of the largest site alone is 24 MiB; 10 MiB are left beside the process
    plan = memory.plan_calibration(1 << 20, 0, 32, ['bias'], 510 * MiB, 500 * MiB)
    assert not plan['fits'] and plan['chunk_size'] == 1
    msg = memory.over_budget_error(plan, 32, 2)
    assert msg.startswith('calibration at T=32 needs at least') and '\n' not in msg
    assert '--memory-budget' in msg and '--calib-batch-size 1' in msg


def test_the_default_budget_is_a_share_of_the_machine(monkeypatch):
    GiB = 1 << 30
    monkeypatch.setattr(memory, 'total_bytes', lambda: 24 * GiB)
    monkeypatch.setattr(memory, 'available_bytes', lambda device=None: 20 * GiB)
    assert memory.default_memory_budget() == 6 * GiB
    monkeypatch.setattr(memory, 'available_bytes', lambda device=None: 4 * GiB)
    assert memory.default_memory_budget() == 3 * GiB       # a busy machine: 3/4 of free


def test_a_run_within_a_budget_prints_its_plan_and_converts_as_with_those_options(
        monkeypatch):
    """convert_backbone(memory_budget=...) calibrates in the chunk and with the cache RAM it
    chose, bit for bit the network the user gets passing them, and reports the plan."""
    from snn_det import pipeline
    from snn_det.runtime.cache import CalibrationCache
    said = []
    monkeypatch.setattr(pipeline, 'print_log', lambda msg, **kw: said.append(msg))
    bb, x, obs = _observers()
    calib = ['bias']
    largest = max(o.largest_batch for o in obs.values())
    held = memory.held_bytes(obs, 16, calib, 1, 1 << 40, None, False)
    process = 1 << 30                       # the process's resident set, fixed for the test
    monkeypatch.setattr(memory, 'rss_gib', lambda: 1.0)
    # room for a chunk of 4 steps (of 16) beside what the cache wants, not for 8
    budget = process + memory.CHUNK_COPIES * 4 * largest * 4 + held + 1
    cfg = ConversionConfig(threshold='max', calib=calib)
    with CalibrationCache(1 << 20, None, 0) as cache:
        tim = convert_backbone(bb, [x], [16], cfg, progress=True, cache=cache,
                               memory_budget=budget, choose_cache_budget=True)
        assert cache.budget == budget - process - memory.CHUNK_COPIES * 4 * largest * 4
    plan = tim['per_T'][16]['memory_plan']
    assert plan['budget'] == budget and plan['chunk_size'] == 4
    assert plan['total'] == process + memory.CHUNK_COPIES * 4 * largest * 4 + held <= budget
    assert plan['disk'] == 0                # the cache got RAM for all it holds: no files
    line = next(m for m in said if 'expected peak' in m)    # printed before calibrating
    assert 'time chunk 4 of 16 steps' in line and 'chosen to fit' in line
    bb2, _, _ = _observers()
    convert_backbone(bb2, [x], [16], cfg, chunk_size=4, progress=False)
    auto, explicit = bb.spiking_net(16).state_dict(), bb2.spiking_net(16).state_dict()
    for k in auto:
        assert bitwise_equal(auto[k], explicit[k]), k


def test_the_plan_records_the_least_disk_its_cache_needs_and_refuses_more_than_is_free(
        tmp_path):
    """What the cache holds without kept products, beyond its RAM, must fit on the disk
    of its folder (kept products adapt to the disk themselves); a folder not made yet is
    measured at its nearest existing parent."""
    from snn_det.runtime.memory import InsufficientDiskError, check_disk, free_disk_bytes
    GiB = 1 << 30
    plan = check_disk({}, 3 * GiB, 8, str(tmp_path), free=4 * GiB)
    assert plan['disk'] == 3 * GiB and plan['disk_free'] == 4 * GiB
    assert check_disk({}, -GiB, 8, str(tmp_path), free=0)['disk'] == 0   # all in RAM
    with pytest.raises(InsufficientDiskError, match=r'at least 3\.0 GiB .* but 2\.0 GiB is free'):
        check_disk({}, 3 * GiB, 8, str(tmp_path), free=2 * GiB)
    assert free_disk_bytes(str(tmp_path / 'not' / 'made')) == free_disk_bytes(str(tmp_path))
