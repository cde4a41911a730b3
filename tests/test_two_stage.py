"""QCFS (seed 002) and the two-stage conversion (seed 003)."""
import pytest
import torch

from helpers import module_outputs, snn_site_rates, tiny_spiking
from snn_det.calibration.bptt import calibrate_bptt
from snn_det.calibration.potential import calibrate_potential
from snn_det.conversion import ConversionConfig
from snn_det.pipeline import build_spiking_net, observe, targets_at
from snn_det.neurons import IFNeuron
from snn_det.neurons.qc import QCFS, QCActivation, qcfs


def test_qcfs_forward_is_eq_15():
    lam, L = torch.tensor(2.0), 4
    z = torch.rand(1000) * 4 - 1
    expected = lam * torch.clamp(torch.floor(z * L / lam + 0.5) / L, 0, 1)
    assert torch.allclose(qcfs(z, lam, L), expected)


@pytest.mark.parametrize('z0', [-0.6, 0.37, 0.9, 1.3, 3.0])   # below, inside (x3), above
def test_qcfs_gradients_are_eq_17(z0):
    lam0, L = 2.0, 4
    z = torch.tensor([z0], dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(lam0, dtype=torch.float64, requires_grad=True)
    h = qcfs(z, lam, L)
    h.sum().backward()
    lo, hi = -lam0 / (2 * L), lam0 - lam0 / (2 * L)
    if z0 < lo:
        dz, dl = 0.0, 0.0
    elif z0 >= hi:
        dz, dl = 0.0, 1.0
    else:
        dz, dl = 1.0, (float(h.detach()) - z0) / lam0
    assert float(z.grad) == pytest.approx(dz)
    assert float(lam.grad) == pytest.approx(dl)
    # numerically: inside a quantization step h is lam*k/L, so dh/dlam = k/L = h/lam ...
    eps = 1e-6
    if z0 >= hi or z0 < lo:
        num = (float(qcfs(z.detach(), lam.detach() + eps, L)) -
               float(qcfs(z.detach(), lam.detach() - eps, L))) / (2 * eps)
        assert num == pytest.approx(dl, abs=1e-6)


@pytest.mark.parametrize('L', [2, 4, 16])
def test_qcfs_with_L_equal_T_converts_to_if_neurons_exactly(L):
    # seed 002 Theorem 1/2: theta = lambda, v(0) = theta/2, T = L, constant input
    act = QCFS(L=L, init_threshold=1.7)
    z = torch.rand(1, 1, 1, 500, dtype=torch.float64) * 3 - 0.5
    ann = act(z.float()).double()
    n = IFNeuron(1).double()
    theta = act.spiking_threshold().double()
    n.threshold, n.v0 = theta, theta / 2
    snn = n(z.unsqueeze(0).expand(L, *z.shape)).mean(0)
    assert torch.allclose(snn, ann, atol=1e-5)


def test_quantization_noise_follows_eq_14():
    x = torch.rand(200_000) * 4
    plain = QCActivation(T=4, init_threshold=4.0, p=1.0).train()(x)
    d = 1.0
    assert torch.allclose(plain, torch.clamp(torch.round(x / d) * d, 0, 4))
    ident = QCActivation(T=4, init_threshold=4.0, p=0.0).train()(x)
    assert torch.allclose(ident, x.clamp(0, 4))
    noisy = QCActivation(T=4, init_threshold=4.0, p=0.3).train()(x)
    quantized = (noisy == plain) & (plain != x)
    frac = float(quantized.float().mean() / (plain != x).float().mean())
    assert frac == pytest.approx(0.3, abs=0.01)
    # eval mode never injects noise
    assert torch.equal(QCActivation(T=4, init_threshold=4.0, p=0.3).eval()(x), plain)
    # straight-through gradient (Eq. 13)
    xg = torch.tensor([0.3, 1.2], requires_grad=True)
    QCActivation(T=4, init_threshold=4.0, p=1.0)(xg).sum().backward()
    assert torch.equal(xg.grad, torch.ones(2))


def _qc_backbone(name='resnet18', T=4):
    bb = tiny_spiking(name, T=T, act_cfg=dict(type='QCActivation', T=T, p=0.1),
                      conversion=dict(calib=[]))
    batches = [torch.rand(4, 3, 40, 40)]
    obs = observe(bb.graph, batches)
    for s in bb.graph.sites:
        bb.site_activations()[s.name].threshold.data.fill_(float(obs[s.name].max.max()) * 0.8)
    acts = bb.site_activations()
    net = build_spiking_net(bb.graph, obs, T, bb.conversion, acts)
    return bb, net, batches, acts


def _site_outputs(bb, net, x, site, T, acts):
    """(QC-ANN activation, SNN rate x threshold) at ``site``, measured with forward hooks
    on the site's QC activation and on its neuron (not with the calibration helpers)."""
    bb.set_mode('ann')
    target = module_outputs(lambda: bb(x), {site: acts[site]})[site]
    return target, snn_site_rates(net, x, T, [site])[site]


def _site_mse(bb, net, xs, site, T, acts):
    """Mean over ``xs`` of the MSE between the QC-ANN's and the SNN's output at ``site``."""
    total = 0.0
    for x in xs:
        target, rate = _site_outputs(bb, net, x, site, T, acts)
        total += float(((rate - target) ** 2).mean())
    return total / len(xs)


def test_coarse_calibration_moves_the_mean_rate_onto_the_qc_ann():
    bb, net, batches, acts = _qc_backbone()
    site = bb.graph.sites[4].name
    assert float(net.neuron(site).threshold) == pytest.approx(
        float(acts[site].threshold), rel=1e-6)           # theta = QC threshold

    def channel_error():       # Eq. 18's e: per-channel mean of a_hat - r, all images
        pairs = [_site_outputs(bb, net, x, site, 4, acts) for x in batches]
        return torch.cat([a - r for a, r in pairs]).mean(dim=(0, 2, 3))
    before = channel_error()
    v0 = net.neuron(site).v0.clone()
    calibrate_potential(bb.graph, net, batches, site, 4, acts=acts)   # Eq. 18
    assert torch.allclose(net.neuron(site).v0, v0 + 4 * before.reshape(1, -1, 1, 1),
                          atol=1e-5)
    assert channel_error().abs().mean() < 0.8 * before.abs().mean()


@pytest.mark.parametrize('site_idx,fc_batch', [(0, None), (2, None), (5, None), (5, 2)])
def test_one_fine_calibration_step_lowers_the_layer_mse(site_idx, fc_batch):
    # fc_batch: the step sees a random mini-batch of the cached images; the loss before
    # and after is still over all calibration images
    bb, net, batches, acts = _qc_backbone()
    site = bb.graph.sites[site_idx].name
    cfg = ConversionConfig(fc_iters=1, fc_lr=1e-3, fc_patience=5, fc_batch=fc_batch)
    res = calibrate_bptt(bb.graph, net, batches, site, 4, acts=acts, cfg=cfg)
    if site_idx == 0:
        # the stem sees the constant image: its IF neurons reproduce the QC function
        # exactly (seed 002 Theorem 1), so there is nothing to fit and FC keeps it exact
        assert res['before'] == pytest.approx(0.0, abs=1e-12) and res['after'] == 0.0
    else:
        assert res['after'] < res['before']


def test_fine_calibration_stops_on_held_out_images():
    # fc_holdout: the stopping loss is that of images FC never trains on; the kept state
    # is the best one on them, so their loss never ends above where it started
    from snn_det.calibration.bptt import _CachedBatch, _split
    from snn_det.runtime.cache import CalibrationCache
    from snn_det.runtime.spike_codes import store
    bb, net, batches, acts = _qc_backbone()
    mem = CalibrationCache()
    cache = [_CachedBatch(tuple(store(mem, t) for t in (
        torch.zeros(4, b.shape[0], 3, 2, 2), torch.zeros(4, b.shape[0], 5, 2, 2),
        torch.arange(float(b.shape[0]))))) for b in batches]
    train, held = _split(cache, 0.5)
    train, held = [t.load() for t in train], [h.load() for h in held]
    B = batches[0].shape[0]
    assert [t[2].tolist() for t in train][0] == list(range(B - round(B / 2)))
    assert all(h[2].min() > t[2].max() for t, h in zip(train, held))       # disjoint
    assert all(t[0].shape[1] == t[1].shape[1] == t[2].shape[0] for t in train + held)
    assert _split(cache, 0.0) == (cache, cache)
    site = bb.graph.sites[5].name
    held_images = [x[B - round(B / 2):] for x in batches]
    held_before = _site_mse(bb, net, held_images, site, 4, acts)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    # too large a step: no iterate beats the start on the held-out images, and the
    # starting state is restored exactly
    cfg = ConversionConfig(fc_iters=30, fc_lr=1e-2, fc_patience=1, fc_holdout=0.5)
    res = calibrate_bptt(bb.graph, net, batches, site, 4, acts=acts, cfg=cfg)
    assert res['after'] == res['before'] == pytest.approx(held_before, rel=1e-4)
    assert all(torch.equal(*torch.broadcast_tensors(v, state[k]))   # v0 may be expanded
               for k, v in net.state_dict().items())
    # a small one: the held-out loss goes down, and the reported losses are those of the
    # held-out images, measured independently
    cfg = ConversionConfig(fc_iters=30, fc_lr=1e-3, fc_patience=5, fc_holdout=0.5)
    res = calibrate_bptt(bb.graph, net, batches, site, 4, acts=acts, cfg=cfg)
    held_after = _site_mse(bb, net, held_images, site, 4, acts)
    assert res['before'] == pytest.approx(held_before, rel=1e-4)
    assert res['after'] == pytest.approx(held_after, rel=1e-4)
    assert held_after < 0.97 * held_before
    with pytest.raises(ValueError, match='fc_holdout'):
        ConversionConfig(fc_holdout=1.0)


def test_stage2_targets_a_qc_ann_quantized_at_the_finer_of_the_two_T():
    # a QC-ANN fine-tuned for T=4, converted at T=8: its theta, quantized at T=8, is
    # exactly what the stem's IF neurons compute (Theorem 1), g_{theta,4} is not
    bb, _, batches, acts = _qc_backbone(T=4)
    net = build_spiking_net(bb.graph, observe(bb.graph, batches), 8, bb.conversion, acts)
    stem = bb.graph.sites[0].name
    t8 = targets_at(acts, 8)
    assert t8[stem].T == 8 and acts[stem].T == 4 and targets_at(acts, 4)[stem] is acts[stem]
    assert targets_at(acts, 2)[stem] is acts[stem]     # below its T: its own g_{theta,4}
    assert t8[stem].threshold is acts[stem].threshold
    cfg = ConversionConfig(fc_iters=1, fc_lr=1e-3, fc_patience=5)
    assert calibrate_bptt(bb.graph, net, batches, stem, 8, acts=t8, cfg=cfg)['before'] == \
        pytest.approx(0.0, abs=1e-12)
    assert calibrate_bptt(bb.graph, net, batches, stem, 8, acts=acts, cfg=cfg)['before'] > 1e-4


def test_fine_calibration_on_a_signed_darknet_site():
    bb, net, batches, acts = _qc_backbone('darknet')
    site = bb.graph.sites[3].name
    assert bb.graph.site(site).signed
    before = _site_mse(bb, net, batches, site, 4, acts)
    cfg = ConversionConfig(fc_iters=5, fc_lr=1e-3, fc_patience=5)
    res = calibrate_bptt(bb.graph, net, batches, site, 4, acts=acts, cfg=cfg)
    after = _site_mse(bb, net, batches, site, 4, acts)
    assert res['before'] == pytest.approx(before, rel=1e-4)
    assert res['after'] == pytest.approx(after, rel=1e-4)
    assert after < before


def test_command_line_fine_calibration_options_override_the_config():
    """--fc-loss / --fc-lr / --fc-iters reach the ConversionConfig over the config's values;
    an unknown loss is refused by the parser."""
    import argparse
    from snn_det.apis.cli import add_conversion_args, build_conversion
    parser = argparse.ArgumentParser()
    add_conversion_args(parser)
    args = parser.parse_args(['--calib', 'cc+fc', '--fc-loss', 'kl', '--fc-lr', '5e-4',
                              '--fc-iters', '7', '--fc-holdout', '0.25'])
    cfg = build_conversion(dict(fc_loss='mse', fc_lr=1e-4, fc_iters=200), args)
    assert (cfg.calib, cfg.fc_loss, cfg.fc_lr, cfg.fc_iters, cfg.fc_holdout) == \
        (['cc', 'fc'], 'kl', 5e-4, 7, 0.25)
    kept = build_conversion(dict(fc_loss='kl'), parser.parse_args([]))
    assert kept.fc_loss == 'kl'
    with pytest.raises(SystemExit):
        parser.parse_args(['--fc-loss', 'l1'])
