"""Reuse of freed CPU blocks by size inside calibration (snn_det/utils/heap.py,
``block_reuse``; snn_det/neurons/csrc/block_reuse.cpp): same-size blocks come back, what
is kept never lifts blocks in use + kept above (1 + headroom) x their high-water mark,
a headroom keeps a convolution's three blocks where none would come back without it,
torch's allocator is back after the scope, and no number changes."""
import subprocess
import sys

import pytest
import torch

from snn_det.utils import heap

pytestmark = pytest.mark.skipif(not heap.block_reuse_available(),
                                reason='compiled kernels not built')
MB = 1 << 20


def _stats():
    return heap.block_reuse_stats()


def test_a_freed_block_serves_the_next_request_of_its_size():
    with heap.block_reuse():
        a = torch.empty(4 * MB // 4)
        ptr = a.data_ptr()
        del a
        assert _stats()['kept_bytes'] == 4 * MB
        b = torch.empty(4 * MB // 4)                  # same size: the kept block
        assert b.data_ptr() == ptr
        small = torch.empty(1000)                     # below min_bytes: torch's own
        assert _stats()['in_use_bytes'] == 4 * MB
        del b, small
    s = _stats()
    assert s['open'] == 0 and s['kept_bytes'] == 0   # the last exit unmaps what is kept
    c = torch.empty(4 * MB // 4)                      # torch's allocator again
    assert _stats()['in_use_bytes'] == 0
    del c


def test_kept_blocks_stay_under_the_high_water_mark_of_blocks_in_use():
    """Without headroom, in use + kept never exceeds the most bytes in use so far: a
    request no kept block fits first unmaps the oldest kept ones (seq. of a no-reuse
    run, same in-use bytes)."""
    def check():
        s = _stats()
        assert s['in_use_bytes'] + s['kept_bytes'] <= s['high_water_bytes'], s
        return s
    with heap.block_reuse(headroom=0.0):
        a, b = torch.empty(8 * MB // 4), torch.empty(4 * MB // 4)
        assert check()['high_water_bytes'] == 12 * MB
        del a, b
        assert check()['kept_bytes'] == 12 * MB
        c = torch.empty(16 * MB // 4)                # a miss beyond the mark: both go
        s = check()
        assert s['kept_bytes'] == 0 and s['high_water_bytes'] == 16 * MB
        del c
        d = torch.empty(6 * MB // 4)                 # a miss: 6 in use + 16 kept > 16,
        s = check()                                  # so c's block is unmapped
        assert s['kept_bytes'] == 0
        e = torch.empty(6 * MB // 4)
        del d
        f = torch.empty(6 * MB // 4)                 # d's block
        assert check()['kept_bytes'] == 0
        del e, f
        assert check()['kept_bytes'] == 12 * MB


def _conv_like(n_calls: int, headroom: float):
    """The blocks of a oneDNN convolution on a plain input, call after call: its input
    reordered (small), its blocked output, then the plain output while the blocked one
    lives; the input copy and the blocked output are freed in the call, the plain output
    after it.  Returns the misses of the calls after the first, and the largest in use +
    kept over the high-water mark."""
    worst = 0.0
    with heap.block_reuse(headroom=headroom):
        misses0 = None
        for i in range(n_calls):
            if i == 1:
                misses0 = _stats()['misses']
            reorder = torch.empty(2 * MB // 4)
            blocked = torch.empty(8 * MB // 4)
            del reorder
            out = torch.empty(8 * MB // 4)
            del blocked
            s = _stats()
            worst = max(worst, (s['in_use_bytes'] + s['kept_bytes']) / s['high_water_bytes'])
            del out
        return _stats()['misses'] - misses0, worst


def test_a_headroom_keeps_a_convolutions_blocks_within_it():
    """At the mark (16 MiB: two outputs), the 2 MiB input copy can only be kept by
    unmapping an output, so every call makes two blocks afresh; an eighth above the mark
    keeps all three, and memory stays within it."""
    misses, worst = _conv_like(6, 0.0)
    assert misses == 2 * 5 and worst <= 1.0
    misses, worst = _conv_like(6, 0.125)
    assert misses == 0 and worst <= 1.125


def test_the_headroom_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv('SNN_DET_BLOCK_REUSE_HEADROOM', '0.5')
    assert heap.block_reuse_headroom() == 0.5
    monkeypatch.delenv('SNN_DET_BLOCK_REUSE_HEADROOM')
    assert heap.block_reuse_headroom() == heap.BLOCK_REUSE_HEADROOM


def test_a_block_that_outlives_its_scope_serves_the_next_one():
    """A calibration frontier's tensor is made in one pass and freed in a later one: the
    later scope counts it as in use from its start and keeps it when freed, for the next
    request of its size (in use + kept still within the high-water mark)."""
    with heap.block_reuse():
        a = torch.empty(4 * MB // 4)
        ptr = a.data_ptr()
    with heap.block_reuse():
        s = _stats()
        assert s['in_use_bytes'] == 4 * MB and s['high_water_bytes'] == 4 * MB
        del a
        assert _stats()['kept_bytes'] == 4 * MB
        b = torch.empty(4 * MB // 4)
        assert b.data_ptr() == ptr
        del b
    assert _stats()['kept_bytes'] == 0


def test_oneDNN_convolutions_inside_give_the_same_numbers():
    """Convolutions take scratch memory through the allocator's raw interface; inside the
    scope they run and give the same outputs bit for bit, chunk after chunk."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 64, 3, padding=1)
    xs = [(torch.rand(8, 16, 64, 64) < 0.2).float() for _ in range(3)]
    with torch.no_grad():
        ref = [conv(x) for x in xs]
        with heap.block_reuse():
            got = [conv(x).clone() for x in xs for _ in range(2)]
            assert _stats()['hits'] > 0
    assert all(torch.equal(r, g) for r, g in zip([r for r in ref for _ in range(2)], got))


_PEAK = r'''
import os, sys, torch, snn_det
from snn_det.utils import heap
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) * 1024
torch.empty(1)
base = hwm()
ctx = heap.block_reuse(headroom=float(sys.argv[2])) if sys.argv[1] == '1' \
    else heap.nullcontext()
with ctx:
    for chunk in range(6):                   # a calibration pass: the same sizes per chunk
        x = torch.ones(8 << 20)              # 32 MiB
        y = torch.ones(16 << 20) + x.sum()   # 64 MiB, and a 64 MiB temporary
        del x
        z = torch.ones((4 + chunk) << 20)    # a size that changes every chunk
        del y, z
print(hwm() - base, heap.block_reuse_stats().get('hits', 0))
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc/self/status')
def test_reuse_does_not_raise_the_peak_rss():
    """Fresh processes run the same allocation pattern with and without reuse: the peak
    RSS above the start (VmHWM) is no higher with it without headroom, at most the
    headroom's fraction higher with it, and blocks were reused."""
    got = {}
    for on, room in (('0', '0'), ('1', '0'), ('1', str(heap.BLOCK_REUSE_HEADROOM))):
        out = subprocess.run([sys.executable, '-c', _PEAK.replace('heap.nullcontext',
                                                                  'contextlib.nullcontext')
                              .replace('import os,', 'import contextlib, os,'), on, room],
                             capture_output=True, text=True, check=True)
        got[on, room] = [int(v) for v in out.stdout.split()]
    without = got['0', '0'][0]
    assert got['1', '0'][1] > 0, got
    assert got['1', '0'][0] <= without + 4 * MB, got      # (page-table and glibc slack)
    room = got['1', str(heap.BLOCK_REUSE_HEADROOM)]
    assert room[1] > 0 and room[0] <= without * (1 + heap.BLOCK_REUSE_HEADROOM) + 4 * MB, got


def test_a_bad_headroom_in_the_environment_is_named(monkeypatch):
    monkeypatch.setenv('SNN_DET_BLOCK_REUSE_HEADROOM', 'lots')
    with pytest.raises(ValueError, match='SNN_DET_BLOCK_REUSE_HEADROOM.*lots'):
        heap.block_reuse_headroom()


def test_the_chunk_size_named_by_the_memory_check_fits_with_the_headroom():
    """Calibration's memory check counts the kept blocks (headroom x every part) and, when a
    run does not fit, names a --chunk-size whose estimate, headroom included, does."""
    import re
    from types import SimpleNamespace

    from snn_det.calibration.memory import check_calibration_fits
    from snn_det.conversion.errors import InsufficientMemoryError
    obs = {'s': SimpleNamespace(largest_batch=1 << 20)}
    est = check_calibration_fits(obs, 32, 32, ['bias'], 64 * MB, 4, available=1 << 40)
    parts = sum(v for k, v in est.items() if k not in ('reuse', 'total'))
    assert est['reuse'] == int(heap.block_reuse_headroom() * parts)
    free = est['total'] // 3
    with pytest.raises(InsufficientMemoryError, match=r'--chunk-size \d+') as e:
        check_calibration_fits(obs, 32, 32, ['bias'], 64 * MB, 4, available=free)
    k = int(re.search(r'--chunk-size (\d+)', str(e.value)).group(1))
    assert check_calibration_fits(obs, 32, k, ['bias'], 64 * MB, 4, available=free)['total'] <= free
    assert check_calibration_fits(obs, 32, k + 1, ['bias'], 64 * MB, 4,
                                  available=1 << 40)['total'] > free
