"""Simulation speed-ups that must not change a number: the fused C++ neuron steps
(bit-identical to the Python step loop) and one simulation read out at several T
(identical to separate runs, down to the mAP)."""
import copy
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import tiny_spiking
from snn_det.conversion import ConversionConfig
from snn_det.pipeline import convert_backbone
from snn_det.neurons import IFNeuron, SignedIFNeuron, fused_available
from snn_det.neurons import if_neuron

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def test_the_fused_kernels_are_built():
    """tools/setup_env.sh compiles snn_det.neurons._C; without it simulation silently
    falls back to the (slower) Python loop, which the set-up must not allow."""
    assert fused_available()


def _run(neuron, x, chunks, monkeypatch, fused):
    monkeypatch.setenv('SNN_DET_FUSED', '1' if fused else '0')
    neuron.reset()
    with torch.no_grad():
        out = torch.cat([neuron(c) for c in torch.split(x, chunks)])
    state = [neuron.v.clone()] + ([neuron.n.clone()] if neuron.signed else [])
    return out, state


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('cls', [IFNeuron, SignedIFNeuron])
@pytest.mark.parametrize('channel_wise', [True, False])
@pytest.mark.parametrize('plane', [(5, 9), (11, 13)])
def test_fused_steps_equal_the_python_loop_bit_for_bit(cls, dtype, channel_wise, plane,
                                                       monkeypatch):
    """Odd plane sizes (vector blocks plus scalar tails that must not cross a channel;
    11 x 13 also has tiles of several blocks), three time chunks, exact threshold ties,
    large and negative currents: spikes and the final state of the fused kernel equal
    the Python loop's exactly."""
    if not fused_available():
        pytest.skip('fused kernels not built (test_the_fused_kernels_are_built fails)')
    torch.manual_seed(0)
    C = 7
    n = cls(C, channel_wise=channel_wise)
    n.threshold = (torch.rand(1, C if channel_wise else 1, 1, 1) + 0.3).to(dtype)
    n.v0 = (torch.randn(1, C, 1, 1) * 0.3).to(dtype)
    x = (torch.randn(13, 3, C, *plane) * 0.7).to(dtype)
    x[:, 0, :, :2] = 0.25                                  # exact crossings
    x[3] *= 20                                             # saturating inputs
    ref, ref_state = _run(n, x, [4, 6, 3], monkeypatch, fused=False)
    got, got_state = _run(n, x, [4, 6, 3], monkeypatch, fused=True)
    assert got.dtype == dtype and (ref != 0).any() and (ref == 0).any()
    if cls is SignedIFNeuron:
        assert (ref < 0).any()
    assert torch.equal(got, ref)
    for a, b in zip(got_state, ref_state):
        assert torch.equal(a, b)


@pytest.mark.parametrize('cls', [IFNeuron, SignedIFNeuron])
def test_fused_path_is_taken_without_autograd_only(cls, monkeypatch):
    """The kernel serves simulation; BPTT (surrogate set, grad on) keeps the autograd
    node, whose backward needs the saved membranes."""
    if not fused_available():
        pytest.skip('fused kernels not built')
    name = '_fused_signed_steps' if cls.signed else '_fused_if_steps'
    real, calls = getattr(if_neuron, name), []
    monkeypatch.setattr(if_neuron, name, lambda *a: calls.append(1) or real(*a))
    n = cls(3)
    x = torch.rand(4, 2, 3, 4, 4) - 0.3
    n.reset()
    with torch.no_grad():
        n(x)
    assert calls == [1]
    n.reset()
    n.surrogate_alpha = 1.0
    n(x.clone().requires_grad_(True)).sum().backward()
    assert calls == [1]
    monkeypatch.setenv('SNN_DET_FUSED', '0')
    n.reset()
    with torch.no_grad():
        n(x)
    assert calls == [1]


@pytest.mark.parametrize('cls', [IFNeuron, SignedIFNeuron])
@pytest.mark.parametrize('channel_wise', [True, False])
@pytest.mark.parametrize('layout', ['constant', 'channels_last', 'constant_channels_last'])
def test_fused_steps_read_constant_and_channels_last_inputs_exactly(cls, channel_wise, layout,
                                                                     monkeypatch):
    """The kernels read a current repeated over the chunk as one step expanded over time
    (stride 0: the encoded image, no K-fold copy) and channels-last steps (per-element
    thresholds, C not a multiple of the vector block): spikes and state equal the Python
    loop's on the same values bit for bit, the kernel is really used, and channels-last
    outputs stay channels last."""
    if not fused_available():
        pytest.skip('fused kernels not built')
    torch.manual_seed(1)
    C, K, B = 19, 6, 3
    n = cls(C, channel_wise=channel_wise)
    n.threshold = torch.rand(1, C if channel_wise else 1, 1, 1) + 0.3
    n.v0 = torch.randn(1, C, 1, 1) * 0.3
    step = torch.randn(B, C, 5, 7) * 0.7
    if 'channels_last' in layout:
        step = step.contiguous(memory_format=torch.channels_last)
    if 'constant' in layout:
        x = step.unsqueeze(0).expand(K, *step.shape)
        assert x.stride(0) == 0
    else:
        x = (torch.randn(K * B, C, 5, 7) * 0.7).contiguous(
            memory_format=torch.channels_last).reshape(K, B, C, 5, 7)
    name = '_fused_signed_steps' if cls.signed else '_fused_if_steps'
    real, seen = getattr(if_neuron, name), []
    monkeypatch.setattr(if_neuron, name,
                        lambda x, *a: seen.append(if_neuron._kernel_input(x) is x) or real(x, *a))
    ref, ref_state = _run(n, x.contiguous(), [K], monkeypatch, fused=False)
    got, got_state = _run(n, x, [K], monkeypatch, fused=True)
    assert seen == [True]                    # read as it is: no copy made for the kernel
    assert torch.equal(got, ref) and (ref != 0).any() and (ref == 0).any()
    for a, b in zip(got_state, ref_state):
        assert torch.equal(a, b)
    if 'channels_last' in layout:
        n.reset()
        with torch.no_grad():
            out = n(x)
        assert if_neuron.step_format(out[0]) == torch.channels_last
        assert if_neuron.step_format(n.v) == torch.channels_last


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_unobserved_runs_compute_the_stem_once_and_change_no_number(name, monkeypatch):
    """A plain simulation computes the analog stem (convolution on the constant image)
    once per run, not once per chunk, and feeds the encoded image to the first neuron
    without a copy, and adds each residual into the fresh tensor before it (``ops.add``);
    an observed run (a recorder: calibration) runs the stem per chunk and allocates each
    sum.  Both give the same readout bit for bit."""
    bb = tiny_spiking(name, T=12, conversion=dict(threshold='max', channel_wise=True))
    x = torch.rand(2, 3, 32, 48)
    convert_backbone(bb, [x], [12], progress=False)
    net = bb.spiking_net(12)
    stem = next(iter(net.convs.values()))
    calls = []
    stem.register_forward_hook(lambda *a: calls.append(1))
    plain = net.simulate(x, 12, 4)
    assert len(calls) == 1                   # 3 chunks, one stem convolution
    observed = net.simulate(x, 12, 4, recorder=lambda *a: None)
    assert len(calls) == 1 + 3
    for a, b in zip(plain, observed):
        assert torch.equal(a, b)


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_channels_last_simulation_stays_in_that_layout_and_close(name):
    """--channels-last: the image in channels-last layout carries the whole simulation
    in it (the first neuron's spikes and the readouts come out channels last); the
    readouts equal the default layout's up to spikes moved at ties by the convolutions'
    summation order (a small fraction of elements, each by a multiple of theta/T)."""
    bb = tiny_spiking(name, T=8, conversion=dict(threshold='max', channel_wise=True))
    x = torch.rand(2, 3, 32, 48)
    convert_backbone(bb, [x], [8], progress=False)
    net = bb.spiking_net(8)
    layouts = []
    net.neurons[list(net.neurons)[0]].register_forward_hook(
        lambda m, i, o: layouts.append(if_neuron.step_format(o[0])))
    ref = net.simulate(x, 8, 4)
    got = net.simulate(x.contiguous(memory_format=torch.channels_last), 8, 4)
    assert layouts == [torch.contiguous_format] * 2 + [torch.channels_last] * 2
    for a, b in zip(ref, got):
        assert a.shape == b.shape
        assert (a != b).float().mean() < 0.05
        torch.testing.assert_close(a.mean(), b.mean(), rtol=0.02, atol=1e-3)
    bb.channels_last, bb.chunk_size = True, 4
    bb.set_mode('snn', 8)
    for a, b in zip(bb(x), got):
        assert torch.equal(a, b)


# -- one simulation, several readouts -------------------------------------------------------


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_prefix_readouts_equal_separate_runs(name):
    """simulate_prefixes(x, [4, 8, 12]) reads the first T steps of one 12-step run; with
    a chunk size that divides every T they are the separate runs bit for bit, otherwise
    equal up to the float summation order."""
    bb = tiny_spiking(name, T=12, conversion=dict(threshold='max', channel_wise=True))
    x = torch.rand(2, 3, 32, 48)
    convert_backbone(bb, [x], [12], progress=False)
    net = bb.spiking_net(12)
    for chunk, exact in ((4, True), (5, False), (None, False)):
        shared = net.simulate_prefixes(x, [8, 4, 12], chunk)
        assert sorted(shared) == [4, 8, 12]
        for T in (4, 8, 12):
            alone = net.simulate(x, T, chunk if exact else 4)
            for a, b in zip(shared[T], alone):
                if exact:
                    assert torch.equal(a, b), (chunk, T)
                else:
                    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the readouts differ between T (otherwise this test could not fail)
    assert not torch.equal(shared[4][0], shared[12][0])


def test_one_pass_evaluation_gives_the_same_map_as_one_run_per_T(tmp_path):
    """tools/test.py's default for T that share one converted network: one simulation
    to the largest T, one evaluator per T.  On the shipped RetinaNet (12 generated val
    images, converted for T=8) the COCO metrics equal one runner.test() per T."""
    import snn_det  # noqa: F401
    from snn_det.apis import convert_model, wrap_backbone_cfg
    from snn_det.apis.evaluate import evaluate_per_T
    from snn_det.datasets import generate_detection_dataset
    generate_detection_dataset(tmp_path / 'synth', seed=3, num_train=4, num_val=12,
                               workers=1, progress=False)
    data_root = str(tmp_path / 'synth' / 'coco') + '/'
    cfg = Config.fromfile(osp.join(ROOT, 'configs/synth/retinanet_r18n_fpn_12e_synth.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data_root
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.test_dataloader.batch_size = 4
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = data_root + 'annotations/instances_val.json'
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = osp.join(ROOT, 'checkpoints/retinanet_r18n_fpn_12e_synth.pth')
    cfg.log_level = 'WARNING'
    wrap_backbone_cfg(cfg, 8, chunk_size=2)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.load_or_resume()
    convert_model(runner.model, cfg, [8], ConversionConfig(threshold='max', calib=[]),
                  calib_images=4, progress=False)
    shared = evaluate_per_T(runner, [2, 4, 8], include_ann=False, share_simulation=True)
    alone = evaluate_per_T(runner, [2, 4, 8], include_ann=False, share_simulation=False)
    assert [r['shared_pass'] for r in shared] == [[2, 4, 8]] * 3
    assert all('shared_pass' not in r for r in alone)
    keys = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
    for a, b in zip(shared, alone):
        assert a['T'] == b['T'] and a['calib_T'] == b['calib_T'] == 8
        assert [a[k] for k in keys] == [b[k] for k in keys], (a, b)
    assert shared[-1]['AP'] > 0.05 and shared[0]['AP'] < shared[-1]['AP']


# -- MMSE threshold search -----------------------------------------------------------------


@pytest.mark.parametrize('slope', [None, 0.1])
@pytest.mark.parametrize('rounding', [True, False])
@pytest.mark.parametrize('channel_wise', [True, False])
def test_fused_mmse_search_picks_the_thresholds_of_the_torch_search(slope, rounding,
                                                                    channel_wise, monkeypatch):
    """The C++ error kernel (float32 elementwise as quantizers.py, float64 sums) chooses
    the same grid point as the torch search, and that point minimises the error of
    seed 001 Algo. 1 computed here in float64 from the quantizer itself."""
    import copy
    from snn_det.conversion.thresholds import ActivationObserver, choose_threshold
    from snn_det.neurons.quantizers import rate_function
    if not fused_available():
        pytest.skip('fused kernels not built')
    torch.manual_seed(0)
    obs = ActivationObserver(6, slope, max_samples=6 * 3000, seed=1)
    z = torch.randn(3, 6, 40, 40) * torch.linspace(0.2, 3.0, 6).reshape(1, 6, 1, 1)
    z[:, 2] = z[:, 2].abs() ** 2                            # a long-tailed channel
    obs.update(z)
    picked = {}
    for fused in ('1', '0'):
        monkeypatch.setenv('SNN_DET_FUSED', fused)
        picked[fused] = choose_threshold(copy.deepcopy(obs), 'mmse', 16, channel_wise,
                                         grid=50, rounding=rounding)
    assert torch.equal(picked['1'], picked['0'])
    if channel_wise:        # an independent float64 argmin over the same grid
        samples, top = obs.samples.double(), obs.max.double()
        target = obs.activation(obs.samples).double()
        for c in range(6):
            grid = top[c] * torch.arange(1, 51, dtype=torch.float64) / 50
            err = torch.stack([((rate_function(samples[c].float(), 16, g.float(), rounding,
                                               slope).double() - target[c]) ** 2).sum()
                               for g in grid])
            best = float(grid[int(err.argmin())])
            assert float(picked['1'].reshape(-1)[c]) == pytest.approx(best, rel=1e-6), c


@pytest.mark.parametrize('mode,slope', [(0, 0.0), (1, 0.0), (2, 0.1), (3, 0.1)])
def test_mmse_error_kernel_simd_is_bit_identical_to_its_scalar_loop(mode, slope):
    """The AVX2 loop of the MMSE error kernel (where the CPU has it) gives the scalar
    loop's errors bit for bit: the same float32 operations in the same order into the
    same partial sums, NaN / Inf samples and a block tail (S not a multiple of 16)
    included; and the errors are the float64 sums of the quantizer's squared errors."""
    from snn_det.neurons.quantizers import rate_function
    if not fused_available():
        pytest.skip('fused kernels not built')
    g = torch.Generator().manual_seed(mode)
    z = torch.randn(5, 1000 + 37, generator=g) * 3
    z[0, :4], z[1, 5:9], z[2, :3] = float('nan'), float('inf'), -float('inf')
    target = torch.where(z >= 0, z, z * slope) if mode >= 2 else torch.relu(z)
    thetas = ((torch.rand(5, 1, generator=g) * 3 + 0.5) * torch.arange(1, 41) / 40).contiguous()
    fast = torch.ops.snn_det.mmse_errors(z, target, thetas, 16, mode, slope)
    slow = torch.ops.snn_det.mmse_errors(z, target, thetas, 16, mode, slope, False)
    assert torch.equal(fast.view(torch.int64), slow.view(torch.int64))
    for c in (3, 4):            # finite channels: the errors of Eq. 18, summed in float64
        q = rate_function(z[c][None], 16, thetas[c][:, None], mode in (1, 3),
                          slope if mode >= 2 else None)
        ref = ((q - target[c][None]).double() ** 2).sum(1)
        assert torch.allclose(fast[c], ref, rtol=1e-5)


_IMPORT_CHECK = r"""
import json, os
import cv2, mmcv, mmdet.models, mmengine.runner, mmpretrain.models, torch  # noqa: F401
before = dict(os.environ)         # what the dependencies set when imported is theirs
import snn_det, snn_det.apis, snn_det.pipeline  # noqa: F401
print(json.dumps({k: (before.get(k), os.environ.get(k))
                  for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}))
"""


def test_importing_snn_det_changes_no_environment_variable():
    """A library imported into a user's process leaves its environment as it found it
    (no allocator switch such as ``THP_MEM_ALLOC_ENABLE`` set on import): importing
    snn_det after its dependencies changes no variable."""
    import json
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith('THP_')}
    out = subprocess.run([sys.executable, '-c', _IMPORT_CHECK], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('cls', [IFNeuron, SignedIFNeuron])
@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
@pytest.mark.parametrize('fused', [True, False])
def test_steps_written_over_their_input_equal_a_new_output(cls, dtype, layout, fused,
                                                           monkeypatch):
    """``neuron(x, inplace=True)`` writes the spikes over the currents ``x`` (the fused
    kernels' ``out=x``, and the Python loop's): the same spikes and state bit for bit as
    into a new tensor, over three chunks, with exact ties and saturating currents.  A
    constant current (stride 0 in time) is never written over."""
    if fused and not fused_available():
        pytest.skip('fused kernels not built')
    torch.manual_seed(2)
    C, B = 11, 3
    n = cls(C, channel_wise=True)
    n.threshold = (torch.rand(1, C, 1, 1) + 0.3).to(dtype)
    n.v0 = (torch.randn(1, C, 1, 1) * 0.3).to(dtype)
    x = (torch.randn(12 * B, C, 5, 9) * 0.7).to(dtype)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    x = x.reshape(12, B, C, 5, 9)
    x[:, 0, :, :2] = 0.25
    x[3] *= 20
    ref, ref_state = _run(n, x, [4, 5, 3], monkeypatch, fused)
    monkeypatch.setenv('SNN_DET_FUSED', '1' if fused else '0')
    n.reset()
    outs = []
    with torch.no_grad():
        for c in torch.split(x.clone(), [4, 5, 3]):
            ptr = c.data_ptr()
            outs.append(n(c, inplace=True))
            if fused or layout == 'contiguous':     # the loop writes over contiguous steps
                assert outs[-1].data_ptr() == ptr
    assert torch.equal(torch.cat(outs), ref) and (ref != 0).any() and (ref == 0).any()
    state = [n.v] + ([n.n] if n.signed else [])
    assert all(torch.equal(a, b) for a, b in zip(state, ref_state))
    const = x[0].unsqueeze(0).expand(4, *x.shape[1:])
    n.reset()
    with torch.no_grad():
        out = n(const, inplace=True)
    assert out.data_ptr() != const.data_ptr() and torch.equal(const[1], const[0])


def test_fused_kernels_refuse_an_output_that_overlaps_the_input_partly():
    if not fused_available():
        pytest.skip('fused kernels not built')
    x = torch.rand(4, 2, 3, 4, 4)
    v = torch.zeros(2, 3, 4, 4)
    th = torch.ones(3)
    buf = torch.empty(x.numel() + 8)
    xs = buf[:x.numel()].view_as(x).copy_(x)
    with pytest.raises(RuntimeError, match='overlaps x without being x'):
        torch.ops.snn_det.if_steps_(xs, v, th, buf[8:].view_as(x))
    with pytest.raises(RuntimeError, match='shaped like x'):
        torch.ops.snn_det.if_steps_(x, v, th, torch.empty(3, 2, 3, 4, 4))


def test_only_currents_nothing_else_holds_are_written_over():
    """SnnOps.act lets a neuron fire over its input only when it is a temporary: not
    bound to a name, not a view, alone on its storage, outside autograd."""
    import sys

    from snn_det.conversion import ops

    def decide(t):                      # as SnnOps.act counts the holders of its input
        refs = sys.getrefcount(t) - 1
        return ops._unshared(t, refs)
    # (outside assert statements, which pytest rewrites to keep every operand)
    with torch.no_grad():
        temporary = decide(torch.rand(4, 3, 5, 5) + 1)
        held = torch.rand(4, 3, 5, 5)
        named = decide(held)
        view = decide(torch.rand(8, 3, 5, 5)[:4])
        base = torch.rand(4, 3, 5, 5)
        alias = base.view(-1)
        del base
        shared = decide(alias.view(4, 3, 5, 5))
    w = torch.rand(1, requires_grad=True)
    grad = decide(torch.rand(4, 3, 5, 5) * w)         # in an autograd graph
    assert temporary and not (named or view or shared or grad)


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_plain_runs_fire_over_the_currents_and_change_no_number(name, monkeypatch):
    """In a plain simulation every site but the encoded stem writes its spikes over its
    input current (ResNet's residual sum included); the readouts equal those of a run
    where every site allocates its output, bit for bit.  A recorder that reads site
    inputs keeps them intact."""
    from snn_det.conversion import ops
    bb = tiny_spiking(name, T=8, conversion=dict(threshold='max', channel_wise=True))
    x = torch.rand(2, 3, 32, 48)
    convert_backbone(bb, [x], [8], progress=False)
    net = bb.spiking_net(8)
    seen = []
    hooks = [n.register_forward_pre_hook(
        lambda m, args, kw: seen.append(kw.get('inplace', False)), with_kwargs=True)
        for n in net.neurons.values()]
    inplace = net.simulate(x, 8, 4)
    for h in hooks:
        h.remove()
    per_chunk = len(net.neurons)
    assert seen.count(True) == 2 * (per_chunk - 1) and len(seen) == 2 * per_chunk
    real = ops._unshared
    monkeypatch.setattr(ops, '_unshared', lambda t, r: False)
    monkeypatch.setenv('SNN_DET_HEAP_REUSE', '0')        # and no residual sum in place
    fresh = net.simulate(x, 8, 4, recorder=lambda *a: None)
    assert all(torch.equal(a, b) for a, b in zip(inplace, fresh))
    monkeypatch.setattr(ops, '_unshared', real)
    kept = []

    def rec(kind, site, t, steps):
        if kind == 'site_in':
            kept.append((t, t.clone()))
    net.simulate(x, 8, 4, recorder=rec)
    assert kept and all(torch.equal(a, b) for a, b in kept)


# -- the neurons-free floor of the benchmarks ------------------------------------------------


@pytest.mark.parametrize('name', ['resnet18', 'darknet'])
def test_the_neurons_free_net_is_the_folded_ann_without_activations(name):
    """free_neuron_net (the benchmarks' floor: everything but the neurons) keeps every
    convolution, addition and pooling of the converted net and drops only the neurons:
    each step sees the same analog image, so its time-averaged readout is the
    BN-folded ANN with every activation replaced by the identity.  The original net is
    left as it was."""
    from torch import nn

    from snn_det.analysis.neurons_free import FreeNeuron, free_neuron_net
    from snn_det.conversion.ops import AnnOps
    bb = tiny_spiking(name, T=6, conversion=dict(threshold='max', channel_wise=True))
    x = torch.rand(2, 3, 32, 48)
    convert_backbone(bb, [x], [6], progress=False)
    net = bb.spiking_net(6)
    before = net.simulate(x, 6, 4)
    free = free_neuron_net(net)
    assert all(isinstance(n, FreeNeuron) for n in free.neurons.values())
    assert not any(isinstance(n, FreeNeuron) for n in net.neurons.values())
    graph = bb.graph
    linear = AnnOps(graph, acts={s.name: nn.Identity() for s in graph.sites},
                    convs={p: net.conv(p) for p in graph.units})
    with torch.no_grad():
        want = graph.forward(x, linear)
        got = free.simulate(x, 6, 4)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # the real net's spikes are a different function (otherwise this could not fail) ...
    assert not torch.allclose(before[-1], want[-1], rtol=1e-2, atol=1e-3)
    # ... and it is unchanged by the copy
    for a, b in zip(before, net.simulate(x, 6, 4)):
        assert torch.equal(a, b)
