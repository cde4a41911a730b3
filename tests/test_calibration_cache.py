"""Bounded-memory calibration: spike trains in bits, RAM budget, files beyond it."""
import os

import pytest
import torch

from helpers import tiny_spiking
from snn_det.runtime import spike_codes
from snn_det.runtime.cache import CalibrationCache, parse_bytes
from snn_det.calibration.frontier import Frontier
from snn_det.runtime.spike_codes import bitwise_equal, encode
from snn_det.pipeline import build_spiking_net, observe
from snn_det.conversion.config import ConversionConfig
from snn_det.pipeline import calibrate
from snn_det.neurons import IFNeuron, SignedIFNeuron


def _if_train(T=6, B=2, C=5, H=4, W=3, signed=False, seed=0):
    """A spike train as a neuron emits it, thresholds per channel."""
    g = torch.Generator().manual_seed(seed)
    n = SignedIFNeuron(C, True) if signed else IFNeuron(C, True)
    n.threshold = torch.rand(1, C, 1, 1, generator=g) + 0.3
    x = torch.randn(T, B, C, H, W, generator=g)
    with torch.no_grad():
        out = n(x)
    return out.reshape(T * B, C, H, W)


@pytest.mark.parametrize('signed', [False, True])
def test_spike_trains_come_back_bit_for_bit_in_one_or_two_bits(signed):
    x = _if_train(signed=signed)
    assert bool((x != 0).any()) and (bool((x < 0).any()) == signed)
    with CalibrationCache() as cache:
        e = encode(cache, x)
        assert e.is_spikes
        assert bitwise_equal(e.decode(), x)
        # 1 bit per element (IF) or 2 (signed), rounded up to whole bytes
        bits = 2 if signed else 1
        assert e.nbytes == bits * -(-x.numel() // 8)


def test_sum_of_trains_is_kept_as_its_terms_and_analog_tensors_as_they_are():
    a, b = _if_train(seed=1, signed=True), _if_train(seed=2, signed=True)
    with CalibrationCache() as cache:
        ea = encode(cache, a)
        s = b + a                         # Darknet's out + x
        es = encode(cache, s, last=b, prev=ea, prev_value=a)
        assert es.is_spikes and len(es.terms) == 2
        assert bitwise_equal(es.decode(), s)
        # an analog tensor, or one with NaN, is stored exactly as it is
        r = torch.randn(4, 3, 5, 5)
        er = encode(cache, r)
        assert not er.is_spikes and bitwise_equal(er.decode(), r)
        bad = a.clone()
        bad[0, 0, 0, 0] = float('nan')
        eb = encode(cache, bad)
        assert not eb.is_spikes and bitwise_equal(eb.decode(), bad)
        # a tensor that only looks like a sum (wrong terms) is not taken for one
        wrong = encode(cache, s + 1e-3, last=b, prev=ea, prev_value=a)
        assert not wrong.is_spikes and bitwise_equal(wrong.decode(), s + 1e-3)


def test_budget_spills_to_files_written_over_once_released_and_gone_when_closed(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr('snn_det.runtime.cache.FILE_POOL_MIN', 500)
    root = tmp_path / 'work'
    cache = CalibrationCache(budget=100, root=str(root))
    small = cache.put(torch.arange(10, dtype=torch.float32))       # 40 B: RAM
    big = cache.put(torch.arange(100, dtype=torch.float32))        # 400 B: file
    assert not small.on_disk and big.on_disk
    assert torch.equal(big.load(), torch.arange(100, dtype=torch.float32))
    files = os.listdir(cache.dir)
    assert len(files) == 1 and cache.disk_bytes == 400 and cache.ram_bytes == 40
    del big          # handle gone: the file is kept to be written over (still on disk)
    assert os.listdir(cache.dir) == files and cache.pool_bytes == 400
    again = cache.put(torch.arange(90, dtype=torch.float32))       # 360 B: into that file
    assert os.listdir(cache.dir) == files and cache.disk_bytes == 400 and cache.pool_bytes == 0
    assert torch.equal(again.load(), torch.arange(90, dtype=torch.float32))
    other = cache.put(torch.zeros(300))                           # 1200 B: a new file
    assert len(os.listdir(cache.dir)) == 2 and cache.disk_bytes == 1600
    del again, other     # beyond the pool's cap (500 B here) the oldest files go
    assert cache.pool_bytes <= 500 and cache.disk_bytes == cache.pool_bytes
    assert len(os.listdir(cache.dir)) == len(cache._pool)
    cache.put(torch.zeros(200))
    cache.close()
    assert not root.exists()        # the cache made the root, and leaves nothing behind
    with pytest.raises(RuntimeError, match='closed'):
        cache.put(torch.zeros(1))


def test_sizes_parse_with_units_and_bad_ones_name_the_value():
    assert parse_bytes('4G') == 4 << 30 and parse_bytes('512MB') == 512 << 20
    assert parse_bytes('0') == 0 and parse_bytes('inf') is None and parse_bytes(1000) == 1000
    with pytest.raises(ValueError, match="'lots'"):
        parse_bytes('lots')


def _convert_state(name, calib, budget, float_frontier=False, monkeypatch=None, tmp=None):
    torch.manual_seed(0)
    bb = tiny_spiking(name, conversion=dict(threshold='mmse', channel_wise=True))
    g = torch.Generator().manual_seed(3)
    batches = [torch.rand(3, 3, 40, 40, generator=g), torch.rand(2, 3, 40, 40, generator=g)]
    obs = observe(bb.graph, batches)
    T = 8
    net = build_spiking_net(bb.graph, obs, T, bb.conversion)
    cfg = ConversionConfig.from_dict(dict(calib=calib, weight_iters=6, fc_iters=6,
                                          fc_holdout=0.4))
    if float_frontier:     # what calibration kept before: every tensor as float, in RAM
        monkeypatch.setattr('snn_det.runtime.states.encode',
                            lambda cache, x, *a, **k: spike_codes.store(cache, x))
        monkeypatch.setattr('snn_det.calibration.bptt.encode',
                            lambda cache, x, *a, **k: spike_codes.store(cache, x))
    with CalibrationCache(budget, tmp) as cache:
        calibrate(bb.graph, net, batches, cfg, chunk_size=3, progress=False, cache=cache)
        stats = cache.stats()
    if float_frontier:
        monkeypatch.undo()
    return net.state_dict(), stats


@pytest.mark.parametrize('name,calib', [('resnet18', 'lcp'), ('resnet18', 'lcp+acp'),
                                        ('darknet', 'lcp'), ('darknet', 'cc+fc'),
                                        ('resnet18', 'cc+fc')])
def test_bits_on_disk_give_the_same_conversion_as_floats_in_ram(name, calib, monkeypatch,
                                                                tmp_path):
    """Spike trains in bits, everything spilled to files (budget 0), give bit for bit
    the converted network of the float, in-RAM frontier."""
    ref, ref_stats = _convert_state(name, calib, None, True, monkeypatch)
    got, stats = _convert_state(name, calib, 0, tmp=str(tmp_path / 'spill'))
    assert stats['peak_ram_bytes'] == 0 and stats['peak_disk_bytes'] > 0
    if calib == 'lcp':   # frontiers only: T-step spike trains in bits beside B-image floats
        assert stats['peak_disk_bytes'] < 0.3 * ref_stats['peak_ram_bytes']
    assert ref.keys() == got.keys()
    for k in ref:
        assert bitwise_equal(ref[k], got[k]), k
    assert not (tmp_path / 'spill').exists()


@pytest.mark.parametrize('name,calib', [('resnet18', 'lcp'), ('darknet', 'cc+fc')])
def test_frontier_chunks_decode_into_the_buffer_let_go_and_change_no_number(name, calib,
                                                                            monkeypatch):
    """A frontier decodes each spike chunk (a tensor, or each entry of a named state)
    into the previous chunk's buffer once nothing holds it (no fresh pages per chunk),
    and the conversion is bit for bit the one that decodes every chunk into new memory."""
    from snn_det.runtime import states
    ref, _ = _convert_state(name, calib, None)
    decode, reused = states.decode_state, []

    def counting(stored, device, out=None):
        reused.append(out is not None and (not isinstance(out, dict) or len(out) > 0))
        return decode(stored, device, out)
    monkeypatch.setattr(states, 'decode_state', counting)
    got, _ = _convert_state(name, calib, None)
    assert sum(reused) > 0
    monkeypatch.setattr(states, 'decode_state', decode)
    monkeypatch.setattr(states, '_free_buffer', lambda t, refs=1: None)
    fresh, _ = _convert_state(name, calib, None)
    for k in ref:
        assert bitwise_equal(ref[k], got[k]) and bitwise_equal(ref[k], fresh[k]), k


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_frontier_boundaries_are_spike_codes_at_every_segment(name):
    """ResNet's block outputs are IF trains (1 bit); Darknet's residual stream is a
    sum of signed trains, kept as its terms: no boundary falls back to float."""
    bb = tiny_spiking(name, conversion=dict(threshold='max'))
    x = torch.rand(2, 3, 40, 40)
    net = build_spiking_net(bb.graph, observe(bb.graph, [x]), 8, bb.conversion)
    with CalibrationCache() as cache:
        f = Frontier(x, cache)
        named = 0
        for seg in range(1, len(bb.graph.segments)):
            f.advance(bb.graph, net, seg, 8, 4)
            for e in f._snn:      # a tensor, or inside a residual block {'x': .., 'y': ..}
                codes = list(e.values()) if isinstance(e, dict) else [e]
                assert all(c.is_spikes for c in codes), seg
                named += isinstance(e, dict)
            ref = net.advance(x, 8, 4, 0, seg)
            for c, chunk in enumerate(f.snn):
                if isinstance(chunk, dict):
                    assert chunk.keys() == ref[c].keys()
                    assert all(bitwise_equal(chunk[k], ref[c][k]) for k in chunk)
                else:
                    assert bitwise_equal(chunk, ref[c])
        assert named                # the block-internal boundaries were visited


def test_calibration_images_in_the_cache_spill_and_give_the_same_conversion(tmp_path):
    """convert_model keeps the calibration images in the cache too (CachedImages): with
    a zero budget they live in files, RAM holds none of them, and the converted network
    is bit for bit the one from images held in a list."""
    from snn_det.runtime.states import CachedImages
    from snn_det.conversion import ConversionConfig
    torch.manual_seed(0)
    xs = [torch.rand(2, 3, 40, 40) for _ in range(3)]
    cfg = ConversionConfig(threshold='max', calib=['bias', 'potential'])
    states = []
    for cached in (False, True):
        torch.manual_seed(1)                 # the same initial weights both times
        bb = tiny_spiking('resnet18', conversion=dict(threshold='max'))
        with CalibrationCache(0, str(tmp_path / 'spill')) as cache:
            batches = CachedImages(cache, xs) if cached else xs
            if cached:
                assert cache.stats()['peak_ram_bytes'] == 0
                assert all(bitwise_equal(batches[i], xs[i]) for i in range(3))
            from snn_det.pipeline import convert_backbone
            convert_backbone(bb, batches, [8], cfg, 4, progress=False, cache=cache)
        states.append(bb.spiking_net(8).state_dict())
    for k in states[0]:
        assert bitwise_equal(states[0][k], states[1][k]), k
    assert not (tmp_path / 'spill').exists()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_compiled_spike_codes_equal_the_python_codes(dtype, monkeypatch):
    """The C++ encoder / decoder give the Python path's codes (theta, bit planes) and
    decode to the very bits of the train, for IF and signed trains, any channel dim and
    rows that do not end on a byte; non-trains (a value off {0, +-theta}, NaN) refuse."""
    from snn_det.runtime import spike_codes as sc
    from snn_det.neurons import fused_available
    if not (fused_available() and hasattr(torch.ops.snn_det, 'spike_encode')):
        pytest.skip('compiled kernels not built')
    g = torch.Generator().manual_seed(0)
    with CalibrationCache() as cache:
        # rows of 63, 12 and 1 elements, and of 1517 (the vector loops, a ragged tail)
        # and channel innermost with C % 8 == 0 (a channels-last tensor's memory order)
        for cd, shape in [(1, (6, 5, 7, 9)), (2, (3, 2, 5, 4, 3)), (1, (4, 3, 1, 1)),
                          (1, (2, 3, 41, 37)), (3, (3, 5, 7, 16)), (2, (37, 3, 24))]:
            view = [1] * len(shape)
            view[cd] = shape[cd]
            theta = (torch.rand(shape[cd], generator=g, dtype=dtype) + 0.1).reshape(view)
            theta.view(-1)[0] = 0.0                       # a silent channel
            q = torch.randint(-1, 2, shape, generator=g).to(dtype)
            for x in (q.clamp(min=0) * theta + 0.0, q * theta + 0.0):   # no -0.0
                monkeypatch.setenv('SNN_DET_FUSED', '1')
                a = sc.spike_term(cache, x, cd)
                monkeypatch.setenv('SNN_DET_FUSED', '0')
                b = sc.spike_term(cache, x, cd)
                assert torch.equal(a.theta, b.theta)
                assert torch.equal(a.pos.load('cpu'), b.pos.load('cpu'))
                assert (a.neg is None) == (b.neg is None)
                if a.neg is not None:
                    assert torch.equal(a.neg.load('cpu'), b.neg.load('cpu'))
                for fused in ('1', '0'):
                    monkeypatch.setenv('SNN_DET_FUSED', fused)
                    assert bitwise_equal(a.decode(dtype, 'cpu'), x)
                    buf = torch.full_like(x, 5.0)        # a used buffer, written over
                    assert bitwise_equal(a.decode(dtype, 'cpu', buf), x)
                monkeypatch.setenv('SNN_DET_FUSED', '1')
                assert a.decode(dtype, 'cpu', buf).data_ptr() == buf.data_ptr()
                inner = x[(0,) * (cd + 1)].numel()
                for i in (0, x.numel() // 2 + 3, x.numel() - 1):   # row starts, middles, ends
                    theta_c = x.select(cd, (i // inner) % shape[cd]).abs().max()
                    if theta_c > 0:      # half the channel's theta: off the train
                        off = x.clone()
                        off.view(-1)[i] = theta_c / 2
                        assert sc.spike_term(cache, off, cd) is None
                    nan = x.clone()
                    nan.view(-1)[i] = float('nan')
                    assert sc.spike_term(cache, nan, cd) is None


def test_gpu_bit_packing_gives_numpys_bytes_and_bits():
    """What a GPU packs and unpacks on the device (torch operations) is numpy's
    ``packbits`` / ``unpackbits`` with ``bitorder='little'``, byte for byte, also for
    lengths that do not end on a byte; run here on the CPU tensors it takes."""
    import numpy as np
    from snn_det.runtime import spike_codes as sc
    g = torch.Generator().manual_seed(0)
    for n in (1, 7, 8, 9, 63, 1000, 4099):
        mask = torch.rand(n, generator=g) < 0.3
        packed = sc._pack_torch(mask)
        want = np.packbits(mask.numpy(), bitorder='little')
        assert packed.dtype == torch.uint8 and np.array_equal(packed.numpy(), want)
        bits = sc._unpack_torch(torch.from_numpy(want), n)
        assert np.array_equal(bits.numpy(), np.unpackbits(want, count=n, bitorder='little'))


def _channels_last(x):
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('signed', [False, True])
def test_channels_last_trains_are_stored_in_their_memory_order_bit_for_bit(signed,
                                                                          monkeypatch):
    """A channels-last train is encoded without a copy (its memory order, channels
    innermost) and decodes to the same bits in the same layout, into a buffer of that
    layout where one is given; compiled and Python codes agree; analog channels-last
    tensors come back as they were too."""
    x = _channels_last(_if_train(C=16, H=5, W=7, signed=signed))
    assert spike_codes.is_channels_last(x)
    with CalibrationCache() as cache:
        for fused in ('1', '0'):
            monkeypatch.setenv('SNN_DET_FUSED', fused)
            e = encode(cache, x)
            assert e.is_spikes and e.nbytes == (2 if signed else 1) * x.numel() // 8
            y = e.decode()
            assert spike_codes.is_channels_last(y) and bitwise_equal(y, x)
            buf = _channels_last(torch.full_like(x, 5.0))
            z = e.decode(out=buf)
            assert bitwise_equal(z, x)
            if fused == '1':
                assert z.data_ptr() == buf.data_ptr()
                pos = e.terms[0].pos.load('cpu')
            else:       # the same bytes from numpy's packing
                assert torch.equal(e.terms[0].pos.load('cpu'), pos)
        r = _channels_last(torch.randn(2, 16, 5, 7))
        er = encode(cache, r)
        assert not er.is_spikes and spike_codes.is_channels_last(er.decode())
        assert bitwise_equal(er.decode(), r)


def test_sum_over_time_of_channels_last_steps_keeps_the_layout():
    """The sum over time of a channels-last time-folded tensor is the sum of its steps,
    channels last; of any other tensor exactly ``reshape(steps, -1, ...).sum(0)``."""
    from snn_det.conversion.ops import sum_over_time
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4 * 2, 16, 5, 7, generator=g, dtype=torch.float64)
    ref = x.reshape(4, 2, 16, 5, 7).sum(0)
    assert torch.equal(sum_over_time(x, 4), ref)
    s = sum_over_time(_channels_last(x), 4)
    assert spike_codes.is_channels_last(s)
    assert torch.allclose(s, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('name,calib', [('resnet18', 'lcp'), ('darknet', 'lcp+acp'),
                                        ('darknet', 'cc+fc')])
def test_channels_last_calibration_keeps_its_layout_and_the_conversion(name, calib,
                                                                       tmp_path):
    """``channels_last=True`` runs calibration with every frontier boundary (ANN and SNN,
    spilled to files) channels last, and in float64, where no spike sits on a tie, converts
    to the default layout's network up to float rounding."""
    states = []
    for cl in (False, True):
        torch.manual_seed(0)
        bb = tiny_spiking(name, conversion=dict(threshold='mmse', channel_wise=True)).double()
        g = torch.Generator().manual_seed(3)
        batches = [torch.rand(3, 3, 40, 40, generator=g, dtype=torch.float64),
                   torch.rand(2, 3, 40, 40, generator=g, dtype=torch.float64)]
        net = build_spiking_net(bb.graph, observe(bb.graph, batches), 8, bb.conversion)
        cfg = ConversionConfig.from_dict(dict(calib=calib, weight_iters=6, fc_iters=6,
                                              fc_holdout=0.4, channels_last=cl))
        with CalibrationCache(0, str(tmp_path / 'spill')) as cache:
            calibrate(bb.graph, net, batches, cfg, chunk_size=3, progress=False, cache=cache)
        states.append(net.state_dict())
    for k in states[0]:
        assert torch.allclose(states[0][k], states[1][k], rtol=1e-9, atol=1e-12), k
    # the layout is kept from the image to the last segment
    x = torch.rand(2, 3, 40, 40)
    bb = tiny_spiking(name, conversion=dict(threshold='max'))
    net = build_spiking_net(bb.graph, observe(bb.graph, [x]), 8, bb.conversion)
    with CalibrationCache(0, str(tmp_path / 'spill')) as cache:
        f = Frontier(x, cache, memory_format=torch.channels_last)
        for seg in range(1, len(bb.graph.segments)):
            f.advance(bb.graph, net, seg, 8, 4)
            for v in [f.ann] + list(f.snn):
                for t in (v.values() if isinstance(v, dict) else [v]):
                    if isinstance(t, torch.Tensor) and t.dim() == 4:
                        assert spike_codes.is_channels_last(t), seg
            assert all(c.is_spikes for e in f._snn
                       for c in (e.values() if isinstance(e, dict) else [e]))


def test_calib_channels_last_option_reaches_the_conversion_and_its_description():
    """``--calib-channels-last`` sets ``ConversionConfig.channels_last`` (kept in the
    converted config), over a config that does not; without it the config's value stays."""
    import argparse
    from snn_det.apis.cli import add_conversion_args, build_conversion
    parser = argparse.ArgumentParser()
    add_conversion_args(parser)
    cfg = build_conversion(dict(calib='lcp'), parser.parse_args(['--calib-channels-last']))
    assert cfg.channels_last and cfg.to_dict()['channels_last']
    assert 'channels-last' in cfg.describe()
    assert not build_conversion({}, parser.parse_args([])).channels_last
    assert build_conversion(dict(channels_last=True), parser.parse_args([])).channels_last


def test_large_tensors_spill_in_pieces_that_any_later_tensor_can_reuse(tmp_path, monkeypatch):
    """A spilled tensor is written in PIECE_BYTES files; released, they take pieces of the
    next tensors, whatever their sizes, and every tensor comes back bit for bit."""
    monkeypatch.setattr('snn_det.runtime.cache.PIECE_BYTES', 256)
    cache = CalibrationCache(budget=0, root=str(tmp_path / 'spill'))
    a = torch.randn(3, 50)                                    # 600 B: 256 + 256 + 88
    h = cache.put(a)
    assert [s for _, s in h._files] == [256, 256, 88] and torch.equal(h.load(), a)
    names = {p for p, _ in h._files}
    del h
    b = (torch.rand(2, 40) < 0.5).to(torch.uint8).view(torch.int8)     # 80 B: into the 88
    c = torch.randn(128, dtype=torch.float64)                          # 1024 B
    hb, hc = cache.put(b), cache.put(c)
    used = {p for p, _ in hb._files + hc._files}
    assert names <= used                  # the three files were written over, none lost
    assert torch.equal(hb.load(), b) and torch.equal(hc.load(), c)
    assert cache.disk_bytes == sum(s for _, s in hb._files + hc._files) + cache.pool_bytes
    cache.close()
    assert not (tmp_path / 'spill').exists()
