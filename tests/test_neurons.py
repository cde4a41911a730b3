"""IF neurons against the papers' equations."""
import math

import pytest
import torch

from snn_det.neurons import IFNeuron, SignedIFNeuron
from snn_det.neurons.quantizers import clip_round, if_rate, signed_clip_round


def run(neuron, current, T):
    """Feed a constant current for T steps; return the total number of spikes."""
    neuron.reset()
    x = current.unsqueeze(0).expand(T, *current.shape)
    out = neuron(x)
    return out, (out != 0).sum(0)


@pytest.mark.parametrize('T', [1, 5, 16, 64])
def test_if_neuron_counts_cliptround_spikes(T):
    # seed 002 Eq. 11/15 with T = L: v(0) = theta/2 gives clip(floor(zT/theta + 1/2), 0, T)
    # random currents (no exact rounding ties), float64 so T additions stay exact enough
    theta = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    neuron = IFNeuron(3, channel_wise=True).double()
    neuron.threshold = theta.clone()
    neuron.v0 = theta / 2
    z = (torch.rand(1, 3, 1, 400, dtype=torch.float64) * 4 - 1)
    out, count = run(neuron, z, T)
    expected = torch.clamp(torch.floor(z * T / theta + 0.5), 0, T)
    assert torch.equal(count.to(expected.dtype), expected)
    # the rate x threshold readout is ClipRound (seed 001 Eq. 17) and the closed form
    assert torch.allclose(out.mean(0), clip_round(z, T, theta), atol=1e-6)
    assert torch.allclose(out.mean(0), if_rate(z, T, theta, theta / 2), atol=1e-6)


def test_unevenness_example_of_seed_002():
    # weights 2 and -2; inputs fire 3 and 2 spikes in T=5; theta=1; v(0)=0
    T = 5
    orders = {  # spike times (1-based) of the two presynaptic neurons -> expected rate
        0.4: ([1, 3, 5], [2, 4]),
        0.8: ([1, 2, 3], [4, 5]),
        0.2: ([3, 4, 5], [1, 2]),
    }
    for expected, (a, b) in orders.items():
        s = torch.zeros(T, 2)
        s[[t - 1 for t in a], 0] = 1
        s[[t - 1 for t in b], 1] = 1
        assert s[:, 0].sum() == 3 and s[:, 1].sum() == 2
        current = (s @ torch.tensor([2.0, -2.0])).reshape(T, 1, 1, 1, 1)
        neuron = IFNeuron(1)
        neuron.threshold.fill_(1.0)
        neuron.v0.fill_(0.0)
        out = neuron(current)
        assert math.isclose(float(out.mean()), expected, abs_tol=1e-6)


@pytest.mark.parametrize('T', [4, 8, 32])
def test_signed_neuron_matches_leaky_qc_function(T):
    # seed 003 Eq. 22: theta * clip(1/theta [LeakyReLU(x)]_{theta/T}, -1, 1)
    theta, slope = 1.5, 0.1
    neuron = SignedIFNeuron(1, negative_slope=slope)
    neuron.threshold.fill_(theta)
    neuron = neuron.double()
    z = (torch.rand(1, 1, 1, 600, dtype=torch.float64) * 28 - 25)
    out, _ = run(neuron, z, T)
    y = torch.where(z >= 0, z, slope * z)
    q = y * T / theta
    expected = theta / T * torch.clamp(torch.sign(q) * torch.floor(q.abs() + 0.5), -T, T)
    assert torch.allclose(out.mean(0), expected, atol=1e-5)
    assert torch.allclose(signed_clip_round(z, T, torch.tensor(theta, dtype=z.dtype), slope),
                          expected, atol=1e-6)
    assert set(out.unique().tolist()) <= {-theta, 0.0, theta}


def test_signed_neuron_relu_limit_takes_back_spikes_of_uneven_inputs():
    # relu_neuron='signed': negative slope 0.  Seed 002's unevenness error: the current is
    # +1 for three steps, then -1 for three (theta = 1), so its mean is 0 and the ANN's
    # ReLU gives 0.  An IF neuron with v(0) = theta/2 keeps the 3 spikes it fired early
    # (rate 0.5); the signed neuron's net count follows round(max(S_t, 0) / theta) of the
    # integrated input S_t = 1, 2, 3, 2, 1, 0 and takes all three back (rate 0).
    T = 6
    current = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0]).reshape(T, 1, 1, 1, 1)
    if_neuron = IFNeuron(1)
    if_neuron.v0.fill_(0.5)
    assert math.isclose(float(if_neuron(current).mean()), 0.5, abs_tol=1e-6)
    signed = SignedIFNeuron(1, negative_slope=0.0)
    out = signed(current).reshape(T)
    assert out.tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
    assert float(out.mean()) == 0.0


@pytest.mark.parametrize('T', [4, 16])
def test_signed_relu_limit_never_goes_below_zero_and_tracks_the_integrated_input(T):
    # net count n_t = sum of q up to t stays >= 0 (a negative spike only takes one back)
    # and, while the current moves by less than theta per step, n_t = round(max(S_t,0)/theta)
    torch.manual_seed(0)
    theta = 1.0
    neuron = SignedIFNeuron(1, negative_slope=0.0).double()
    x = (torch.rand(T, 1, 1, 1, 500, dtype=torch.float64) * 1.8 - 0.9)
    out = neuron(x)
    n = out.cumsum(0) / theta
    assert bool((n >= 0).all())
    S = x.cumsum(0)
    assert torch.equal(n, torch.floor(S.clamp_min(0) / theta + 0.5))
    # constant inputs: the ReLU ClipRound function, as the IF neuron with v(0) = theta/2
    z = (torch.rand(1, 1, 1, 400, dtype=torch.float64) * 4 - 1)
    out, _ = run(neuron, z, T)
    assert torch.allclose(out.mean(0), clip_round(z, T, torch.tensor(theta).double()),
                          atol=1e-6)


def test_state_resets_between_inputs_of_different_size():
    neuron = IFNeuron(2, channel_wise=True)
    neuron.v0 = torch.full((1, 2, 1, 1), 0.5)
    a = neuron(torch.rand(4, 1, 2, 6, 8))
    neuron.reset()
    b = neuron(torch.rand(4, 3, 2, 10, 5))
    assert a.shape == (4, 1, 2, 6, 8) and b.shape == (4, 3, 2, 10, 5)


def test_elementwise_potential_rejects_other_size():
    neuron = IFNeuron(2)
    neuron.v0 = torch.zeros(1, 2, 6, 8)
    neuron(torch.rand(2, 1, 2, 6, 8))
    neuron.reset()
    with pytest.raises(ValueError, match='element-wise initial potential'):
        neuron(torch.rand(2, 1, 2, 7, 8))


def test_surrogate_gradient_is_rectangular():
    from snn_det.neurons import spike
    x = torch.tensor([-1.0, -0.2, 0.0, 0.3, 2.0], requires_grad=True)
    spike(x, alpha=1.0).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))


def _numpy_neuron(x, theta, v0, slope=None, h=0.5):
    """Seed 001 Eq. 2-4 (IF, reset by subtraction) and seed 003 Eq. 22 (signed neuron)
    one step at a time in plain float32 numpy, written from the papers, not from snn_det:
    IF: u = v + I, s = 1[u >= theta], v = u - theta s.  Signed: S = S + I,
    d = f(S)/theta - n with f = LeakyReLU, +1 spike if d >= h, -1 if d <= -h, n += spike.
    Returns the outputs theta * spike per step, the final v (or S) and every u (or S)."""
    import numpy as np
    x = x.numpy().astype(np.float32)
    shape = x.shape[1:]
    theta = np.broadcast_to(theta.numpy(), shape).astype(np.float32)
    v = np.broadcast_to(v0.numpy(), shape).astype(np.float32).copy()
    n = np.zeros(shape, np.float32)
    out, pre = np.zeros_like(x), np.zeros_like(x)
    for t in range(x.shape[0]):
        v = (v + x[t]).astype(np.float32)
        pre[t] = v
        if slope is None:
            out[t] = (v >= theta).astype(np.float32) * theta
            v = (v - out[t]).astype(np.float32)
        else:
            d = np.where(v >= 0, v, v * np.float32(slope)).astype(np.float32) / theta - n
            q = (d >= h).astype(np.float32) - (d <= -h).astype(np.float32)
            n = n + q
            out[t] = q * theta
    return torch.from_numpy(out), torch.from_numpy(v), torch.from_numpy(pre)


@pytest.mark.parametrize('cls', [IFNeuron, SignedIFNeuron])
def test_inplace_and_differentiable_loops_equal_an_independent_reference(cls):
    """Without autograd the neurons update their state in place; with the surrogate set
    (BPTT) they run an autograd node.  Both must give the spikes and membrane of the
    papers' equations stepped in plain numpy, across time chunks and at exact ties
    (dyadic inputs, thresholds and v(0): every sum is exact whatever the order)."""
    torch.manual_seed(0)
    n = cls(5, channel_wise=True)
    theta = torch.rand(1, 5, 1, 1) + 0.5
    theta[0, :2, 0, 0] = torch.tensor([0.5, 1.0])
    v0 = torch.randn(1, 5, 1, 1) * 0.3
    v0[0, :2, 0, 0] = torch.tensor([0.25, 0.0])
    n.threshold, n.v0 = theta, v0
    x = torch.randn(12, 2, 5, 6, 6)
    x[:, 0, :2] = 0.25                                   # exact threshold crossings
    slope = getattr(n, 'negative_slope', None)
    ref, ref_v, pre = _numpy_neuron(x, theta, v0, slope)
    if slope is None:
        assert bool((pre == theta.expand_as(pre)).any())          # ties happened
    assert ref.abs().sum() > 0 and (ref == 0).any()
    n.reset()
    with torch.no_grad():
        fast = torch.cat([n(x[:5]), n(x[5:])])          # two chunks
    assert torch.equal(fast, ref) and torch.equal(n.v, ref_v)
    n.reset()
    n.surrogate_alpha = 1.0
    slow = n(x.clone().requires_grad_(True))
    assert slow.requires_grad and not fast.requires_grad
    assert torch.equal(slow.detach(), ref) and torch.equal(n.v.detach(), ref_v)


def _reference_loop(x, v, n, theta, alpha, slope=None, h=0.5):
    """Seed 003 Eq. 2-4 (and Eq. 22 for the signed neuron) step by step with autograd
    through the rectangular surrogate (Eq. 20) and the reset path (Eq. 21)."""
    from snn_det.neurons.surrogate import spike
    out = []
    for t in range(x.shape[0]):
        v = v + x[t]
        if slope is None:
            s = spike(v - theta, alpha)
            v = v - s * theta
            out.append(s * theta)
        else:
            f = torch.where(v >= 0, v, v * slope) / theta
            q = spike(f - n - h, alpha) - spike(n - f - h, alpha)
            n = n + q
            out.append(q * theta)
    return torch.stack(out)


@pytest.mark.parametrize('cls', [IFNeuron, SignedIFNeuron])
def test_fused_bptt_steps_match_autograd_through_the_loop(cls):
    """BPTT runs the K steps as one autograd node (IFSteps / SignedIFSteps); spikes,
    input gradients and the gradient of a per-channel v(0) equal autograd's through
    the step-by-step equations."""
    torch.manual_seed(1)
    T, shape = 10, (2, 4, 5, 5)
    n = cls(4, channel_wise=True).double()
    n.threshold = (torch.rand(1, 4, 1, 1) + 0.5).double()
    x = (torch.randn(T, *shape) * 0.6).double().requires_grad_(True)
    v0 = (torch.randn(1, 4, 1, 1) * 0.3).double().requires_grad_(True)
    g = torch.randn(T, *shape).double()
    slope = getattr(n, 'negative_slope', None)
    ref = _reference_loop(x, v0.expand(shape) + 0, torch.zeros(shape).double(), n.threshold,
                          0.8, slope)
    (ref * g).sum().backward()
    gx, gv0 = x.grad.clone(), v0.grad.clone()
    x.grad, v0.grad = None, None
    n.reset()
    n.v = v0.expand(shape) + torch.zeros(shape).double()
    if n.signed:
        n.n = torch.zeros(shape).double()
    n.surrogate_alpha = 0.8
    out = n(x)
    assert out.grad_fn is not None and 'Steps' in type(out.grad_fn).__name__
    (out * g).sum().backward()
    assert torch.equal(out.detach(), ref.detach())
    assert torch.allclose(x.grad, gx, atol=1e-12) and torch.allclose(v0.grad, gv0, atol=1e-12)
    assert gx.abs().sum() > 0 and gv0.abs().sum() > 0
