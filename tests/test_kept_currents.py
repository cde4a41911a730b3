"""Convolution products kept between layer-wise calibration's two passes
(snn_det.runtime.currents): the second pass adds the corrected bias to the first
pass's product instead of convolving again, and converts to the same network bit for bit."""
import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_spiking
from snn_det.runtime import currents
from snn_det.runtime.cache import CalibrationCache
from snn_det.runtime.spike_codes import bitwise_equal
from snn_det.conversion.config import ConversionConfig
from snn_det.conversion.ops import SnnOps
from snn_det.pipeline import build_spiking_net, calibrate, observe


def test_the_spiking_convolution_adds_its_bias_after_the_product():
    """W * x + b as the product, then the bias: what a kept product plus a bias gives."""
    torch.manual_seed(0)
    bb = tiny_spiking('resnet18', conversion=dict(threshold='max'))
    x = torch.rand(2, 3, 40, 40)
    net = build_spiking_net(bb.graph, observe(bb.graph, [x]), 4, bb.conversion)
    path = next(p for p in bb.graph.units if net.conv(p).in_channels > 3)
    conv = net.conv(path)
    conv.bias.normal_()
    s = (torch.rand(8, conv.in_channels, 10, 10) < 0.3).float() * 0.7
    got = SnnOps(net, 4).conv(path, s)
    want = F.conv2d(s, conv.weight, None, conv.stride, conv.padding) + conv.bias.view(1, -1, 1, 1)
    assert bitwise_equal(got, want)
    assert torch.allclose(got, conv(s), atol=1e-5)


def _convert(name, calib, budget, limit, tmp, channels_last=False):
    torch.manual_seed(0)
    bb = tiny_spiking(name, conversion=dict(threshold='mmse', channel_wise=True))
    g = torch.Generator().manual_seed(3)
    batches = [torch.rand(3, 3, 40, 40, generator=g), torch.rand(2, 3, 40, 40, generator=g)]
    net = build_spiking_net(bb.graph, observe(bb.graph, batches), 8, bb.conversion)
    cfg = ConversionConfig.from_dict(dict(calib=calib, weight_iters=6, fc_iters=6,
                                          fc_holdout=0.4, channels_last=channels_last))
    with CalibrationCache(budget, tmp, current_limit=limit) as cache:
        calibrate(bb.graph, net, batches, cfg, chunk_size=3, progress=False, cache=cache)
        stats = cache.stats()
    return net.state_dict(), stats


@pytest.mark.parametrize('name,calib,cl', [('resnet18', 'lcp', False),
                                           ('resnet18', 'lcp', True),
                                           ('darknet', 'lcp', False),
                                           ('resnet18', 'lcp+acp', False),
                                           ('darknet', 'cc+fc', False)])
@pytest.mark.parametrize('budget', [None, 0])
def test_kept_products_convert_to_the_network_of_recomputed_ones(name, calib, cl, budget,
                                                                 monkeypatch, tmp_path):
    """With every product kept (in RAM, or in files with budget 0) and used by the second
    pass, the converted network is bit for bit the one whose second pass convolves again;
    where weight calibration changed a weight in between (lcp+acp) the product is not used."""
    ref, ref_stats = _convert(name, calib, budget, 0, str(tmp_path / 'a'), cl)
    assert ref_stats['peak_current_bytes'] == 0
    monkeypatch.setattr(currents, 'REUSE_MIN_MACS', 0)
    taken, refused = [], []
    take = currents.KeptCurrents.take

    def counting_take(self, c, device):
        z = take(self, c, device)
        taken.append(z is not None)
        return z
    monkeypatch.setattr(currents.KeptCurrents, 'take', counting_take)
    usable = currents.KeptCurrents.usable

    def counting_usable(self, *a):
        ok = usable(self, *a)
        refused.append(not ok)
        return ok
    monkeypatch.setattr(currents.KeptCurrents, 'usable', counting_usable)
    got, stats = _convert(name, calib, budget, 'auto', str(tmp_path / 'b'), cl)
    assert stats['peak_current_bytes'] > 0
    if budget == 0:
        assert stats['peak_ram_bytes'] == 0
    if calib == 'lcp':
        assert len(taken) > 10 and all(taken) and not any(refused)
    if 'weights' in ConversionConfig.from_dict(dict(calib=calib)).calib:
        assert any(refused)           # a weight changed: that product was not used
    for k in ref:
        assert bitwise_equal(ref[k], got[k]), k
    assert not (tmp_path / 'b').exists()


def test_products_are_kept_only_where_they_pay_and_within_the_limit(monkeypatch, tmp_path):
    """Only convolutions of at least REUSE_MIN_MACS multiply-adds an output keep their
    products (the tiny ResNet's 16-channel ones do not); a limit below one frontier's
    products keeps none, and a limit keeps no more than it at once."""
    _, default = _convert('resnet18', 'lcp', 0, 'auto', str(tmp_path / 'a'))
    monkeypatch.setattr(currents, 'REUSE_MIN_MACS', 0)
    _, big = _convert('resnet18', 'lcp', 0, None, str(tmp_path / 'c'))
    assert 0 < default['peak_current_bytes'] < big['peak_current_bytes']
    _, stats = _convert('resnet18', 'lcp', 0, 1000, str(tmp_path / 'b'))
    assert stats['peak_current_bytes'] == 0
    limit = big['peak_current_bytes'] // 2
    _, some = _convert('resnet18', 'lcp', 0, limit, str(tmp_path / 'd'))
    assert 0 < some['peak_current_bytes'] <= limit


def test_macs_per_output_element():
    assert currents.macs_per_output(torch.nn.Conv2d(64, 64, 3)) == 576
    assert currents.macs_per_output(torch.nn.Conv2d(256, 64, 1)) == 256
    assert currents.macs_per_output(torch.nn.Conv2d(64, 64, 3, groups=64)) == 9
    assert currents.macs_per_output(torch.nn.Conv2d(64, 256, 1)) < currents.REUSE_MIN_MACS


def test_auto_limit_keeps_products_within_half_the_disk_the_cache_may_use(monkeypatch,
                                                                          tmp_path):
    """``'auto'``: the products kept at once stay within half of what the cache may use
    on disk (free space + its pooled files + the products it holds), however many
    frontiers ask one by one; released products' files serve the next ones."""
    import collections
    from snn_det.runtime import cache as cache_mod
    c = CalibrationCache(0, str(tmp_path / 'spill'), current_limit='auto')
    usage = collections.namedtuple('usage', 'total used free')
    monkeypatch.setattr(cache_mod.shutil, 'disk_usage',
                        lambda p: usage(10 ** 6, 0, 1000 - c.disk_bytes))
    kept = []
    while c.room_for_currents(100):
        kept.append(c.put(torch.zeros(25), kind='currents'))       # 100 B each, on disk
    assert c.current_bytes == 500 and len(kept) == 5
    kept.clear()                               # read by the second pass: files pooled
    assert c.current_bytes == 0 and c.pool_bytes == 500
    assert c.room_for_currents(500) and not c.room_for_currents(600)
    c.close()


def test_the_memory_check_counts_products_kept_in_ram():
    """Before calibrating, the estimate counts the products the cache may keep in RAM
    (T-step floats of the largest site per batch, within the budget; with no budget
    within a quarter of the free memory), unless none are kept."""
    from types import SimpleNamespace
    from snn_det.runtime.memory import check_calibration_fits
    L, T, n = 1 << 16, 32, 4
    obs = {'s': SimpleNamespace(largest_batch=L)}
    frontiers = n * (L * 4 + L * T * 2 // 8)
    products = n * L * T * 4
    big = 1 << 40
    est = check_calibration_fits(obs, T, 8, ['bias'], n, None, available=big)
    assert est['cache'] == frontiers + products
    est = check_calibration_fits(obs, T, 8, ['bias'], n, None, available=big,
                                 keeps_products=False)
    assert est['cache'] == frontiers
    est = check_calibration_fits(obs, T, 8, ['bias'], n, frontiers + 1000, available=big)
    assert est['cache'] == frontiers + 1000          # the budget bounds it
    est = check_calibration_fits(obs, T, 8, ['weights'], n, None, available=big)
    assert est['cache'] < frontiers + products       # ACP's weights step first: none kept


@pytest.mark.parametrize('budget', [None, 0])
def test_a_kept_channels_last_product_comes_back_in_its_layout_and_not_as_a_view(budget,
                                                                                 monkeypatch,
                                                                                 tmp_path):
    """So that a neuron may fire over it in place (ops._unshared), as over a computed one."""
    from snn_det.conversion.ops import _unshared
    monkeypatch.setattr(currents, 'REUSE_MIN_MACS', 0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    z = conv(torch.rand(5, 4, 7, 9)).detach().contiguous(memory_format=torch.channels_last)
    with CalibrationCache(budget, str(tmp_path / 'spill')) as cache:
        kept = currents.KeptCurrents('c', conv, cache, 1)
        kept.keep(0, z)
        assert kept.usable('c', conv, 1)
        got = kept.take(0, torch.device('cpu'))
        assert got._base is None and got.is_contiguous(memory_format=torch.channels_last)
        assert bitwise_equal(got, z) and _unshared(got, 1)
        assert kept.take(0, torch.device('cpu')) is None       # used once
