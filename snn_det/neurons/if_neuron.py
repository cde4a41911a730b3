"""Integrate-and-fire neurons with reset by subtraction.

Seed 001 Eq. 2-4 / seed 003 Eq. 2-4, per time step t::

    u[t] = v[t-1] + I[t]                 (integrate the input current)
    s[t] = Theta(u[t] - theta)           (fire when u >= theta)
    v[t] = u[t] - s[t] * theta           (soft reset)

and the neuron emits ``s[t] * theta`` so that its time average approximates the
ANN activation (rate x threshold).  ``v[0]`` is the initial membrane potential.

A neuron processes a chunk of K time steps at once (input ``[K, B, C, H, W]``);
its membrane keeps state across chunks until :meth:`reset`, which the spiking
network calls at the start of every forward, so consecutive batches may have
different H x W.  Simulation steps the state in place without an autograd graph
(:func:`_if_steps`, :func:`_signed_steps`); BPTT calibration (``surrogate_alpha``
set) runs the same loop inside one autograd node per chunk (:class:`IFSteps`,
:class:`SignedIFSteps`) whose backward applies the surrogate gradient.

On the CPU, simulation runs the K steps of a chunk in one fused C++ kernel
(``snn_det.neurons._C``, built with the package; see :func:`fused_available`):
the same operations in the same order, so the spikes are bit-identical to the
Python loop, which stays the fallback (CUDA, other dtypes, no compiled
extension, ``SNN_DET_FUSED=0``) and serves BPTT.

Longer than most modules (~460 lines): the IF and signed neurons share their step loops,
the fused kernels' dispatch and the autograd functions of BPTT; each reference loop sits
beside the kernel that must match it bit for bit.
"""
import os
from typing import Optional

import torch
from torch import Tensor, nn

from ..registry import NEURONS

try:  # the compiled kernels register torch.ops.snn_det.{if,signed}_steps_
    from . import _C  # noqa: F401
    _HAVE_FUSED = True
except ImportError:  # pragma: no cover - depends on the build
    _HAVE_FUSED = False


def fused_available() -> bool:
    """Whether simulation uses the fused C++ steps (compiled, and not disabled by
    ``SNN_DET_FUSED=0``)."""
    return _HAVE_FUSED and os.environ.get('SNN_DET_FUSED', '1') != '0'


def _fusable(x: Tensor, v: Tensor, theta: Tensor) -> bool:
    return (x.device.type == 'cpu' and x.dtype in (torch.float32, torch.float64)
            and fused_available() and not torch.is_grad_enabled())


def _flat_theta(theta: Tensor, x: Tensor) -> Tensor:
    return theta.reshape(-1).to(x.dtype).contiguous()


def step_format(t: Tensor) -> torch.memory_format:
    """Memory format of one time step ``t`` (``[B, C, H, W]`` or any rank):
    ``torch.channels_last`` when it is laid out so (and not also contiguous),
    else ``torch.contiguous_format``.  State tensors follow their input's steps."""
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _kernel_input(x: Tensor) -> Tensor:
    """``x`` as the kernels read it: K steps one after the other, each contiguous or
    channels last, or one such step expanded over time (stride 0: a constant current,
    e.g. the direct encoding of the image, read K times instead of copied); anything
    else is made contiguous."""
    step = x[0]
    fmt = step_format(step)
    if step.is_contiguous(memory_format=fmt) and (
            x.shape[0] == 1 or x.stride(0) in (0, step.numel())):
        return x
    return x.contiguous()


def _state_fits(x: Tensor, *state: Tensor) -> bool:
    """Whether the state tensors have the shape and the layout of one step of ``x``."""
    fmt = step_format(x[0])
    return all(s.shape == x.shape[1:] and s.is_contiguous(memory_format=fmt) for s in state)


def _fused_if_steps(x: Tensor, v: Tensor, theta: Tensor, inplace: bool = False) -> Tensor:
    """The C++ kernel of :func:`_if_steps` (``v`` updated in place)."""
    x = _kernel_input(x)
    return torch.ops.snn_det.if_steps_(x, v, _flat_theta(theta, x), _into(x, inplace))


def _fused_signed_steps(x: Tensor, v: Tensor, n: Tensor, theta: Tensor, slope: float,
                        h: float, inplace: bool = False) -> Tensor:
    """The C++ kernel of :func:`_signed_steps` (``v``, ``n`` updated in place)."""
    x = _kernel_input(x)
    return torch.ops.snn_det.signed_steps_(x, v, n, _flat_theta(theta, x), float(slope),
                                           float(h), _into(x, inplace))


def _into(x: Tensor, inplace: bool) -> Optional[Tensor]:
    """Where the steps' outputs go: over ``x`` itself when allowed and its steps are
    distinct memory (not one step expanded over time), else a new tensor (``None``)."""
    return x if inplace and (x.shape[0] == 1 or x.stride(0) != 0) else None


def _out_like(x: Tensor, inplace: bool) -> Tensor:
    """The output of the Python step loops: ``x`` itself (in place) or a new tensor.
    In place is exact: step t's output is written after its input was read."""
    into = _into(x, inplace) if x.is_contiguous() else None
    return into if into is not None else torch.empty_like(x)


#: granularities of the initial membrane potential
POTENTIAL_GRANULARITIES = ('layer', 'channel', 'element')


def _sum_to(g: Tensor, shape) -> Tensor:
    """Sum a gradient over the dimensions a tensor of ``shape`` was broadcast along."""
    if g.shape == shape:
        return g
    return g.sum([i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 != a],
                 keepdim=True)


def _if_steps(x: Tensor, v: Tensor, theta: Tensor, u_all: Optional[Tensor] = None,
              inplace: bool = False) -> Tensor:
    """K IF steps in place on the membrane ``v`` (full shape): ``u = v + I``,
    ``s = 1[u >= theta]``, ``v = u - theta s``; returns ``theta s``.  ``u_all``, if
    given, receives every ``u`` (what BPTT's backward needs).  ``u >= theta`` equals
    the surrogate's ``(u - theta) >= 0`` exactly in floating point.  Without
    ``u_all`` on the CPU this runs as the fused kernel (same operations, same order).
    ``inplace``: the outputs may be written over ``x`` (the caller gives it up)."""
    if u_all is None and _fusable(x, v, theta) and theta.numel() in (1, x.shape[2]) \
            and _state_fits(x, v):
        return _fused_if_steps(x, v, theta, inplace)
    out = _out_like(x, inplace and u_all is None)
    fired = torch.empty(v.shape, dtype=torch.bool, device=v.device)
    for t in range(x.shape[0]):
        v.add_(x[t])
        if u_all is not None:
            u_all[t] = v
        torch.ge(v, theta, out=fired)
        torch.mul(fired, theta, out=out[t])
        v.sub_(out[t])
    return out


def _signed_steps(x: Tensor, v: Tensor, n: Tensor, theta: Tensor, slope: float, h: float,
                  s_all: Optional[Tensor] = None, d_all: Optional[Tensor] = None,
                  inplace: bool = False) -> Tensor:
    """K steps of the signed neuron in place on ``v`` (integrated input S) and ``n``
    (net spike count): ``d = LeakyReLU(S)/theta - n``, a positive spike when
    ``d >= h``, a negative one when ``d <= -h``; returns ``theta (pos - neg)``.
    ``s_all`` / ``d_all``, if given, receive every ``S`` and ``d`` (for BPTT).
    Without them on the CPU this runs as the fused kernel (same operations, same order).
    ``inplace``: as for :func:`_if_steps`."""
    if s_all is None and d_all is None and _fusable(x, v, theta) \
            and theta.numel() in (1, x.shape[2]) and _state_fits(x, v, n):
        return _fused_signed_steps(x, v, n, theta, slope, h, inplace)
    out = _out_like(x, inplace and s_all is None and d_all is None)
    d = torch.empty_like(v)
    pos = torch.empty(v.shape, dtype=torch.bool, device=v.device)
    neg = torch.empty_like(pos)
    for t in range(x.shape[0]):
        v.add_(x[t])
        if s_all is not None:
            s_all[t] = v
        torch.mul(v, slope, out=d)                    # LeakyReLU = max(v, slope v)
        torch.maximum(v, d, out=d)
        d.div_(theta).sub_(n)
        if d_all is not None:
            d_all[t] = d
        torch.ge(d, h, out=pos)
        torch.le(d, -h, out=neg)
        o = out[t]
        o.copy_(pos)
        o.sub_(neg.to(o.dtype))
        n.add_(o)
        o.mul_(theta)
    return out


class IFSteps(torch.autograd.Function):
    """K steps of the IF neuron as one autograd node, for BPTT (seed 003 Eq. 20-21).

    Forward: ``u[t] = v[t-1] + I[t]``, ``s[t] = 1[u[t] >= theta]``, ``v[t] = u[t] -
    theta s[t]``; returns ``theta s`` and the last ``v``.  Backward runs the same
    recursion in reverse with the rectangular surrogate ``h(u) = 1/alpha 1[|u -
    theta| < alpha/2]`` on the spike and the reset path ``1 - theta h(u)``:

        dL/ds[t] = theta (dL/dout[t] - dL/dv[t]),
        dL/du[t] = dL/dv[t] + h(u[t]) dL/ds[t] = dL/dI[t] = dL/dv[t-1],

    which is what autograd computes through the step-by-step loop, with one saved
    tensor (``u``, ``K x`` the layer) instead of a graph of ~5 nodes per step.
    The threshold is a constant here (Stage II updates weights and ``v(0)``).
    """

    @staticmethod
    def forward(ctx, x: Tensor, v: Tensor, theta: Tensor, alpha: float):  # noqa: D102
        u_all = torch.empty_like(x)
        v_in_shape = v.shape
        v = v.expand_as(x[0]).clone()
        out = _if_steps(x, v, theta, u_all)
        ctx.save_for_backward(u_all, theta)
        ctx.alpha, ctx.v_shape = alpha, v_in_shape
        return out, v

    @staticmethod
    def backward(ctx, g_out: Tensor, g_v: Tensor):  # noqa: D102
        u_all, theta = ctx.saved_tensors
        a = ctx.alpha
        g_x = torch.empty_like(u_all)
        gv = g_v.clone() if g_v is not None else torch.zeros_like(u_all[0])
        for t in range(u_all.shape[0] - 1, -1, -1):
            h = ((u_all[t] - theta).abs() < a / 2).to(gv.dtype) / a
            gs = theta * (g_out[t] - gv)
            gv = gv + h * gs
            g_x[t] = gv
        return g_x, _sum_to(gv, ctx.v_shape), None, None


class SignedIFSteps(torch.autograd.Function):
    """K steps of the signed neuron (:class:`SignedIFNeuron`) as one autograd node.

    Forward as the neuron: ``S += I``, ``d = f(S) - n`` with ``f(S) = LeakyReLU(S) /
    theta``, ``q = 1[d >= h] - 1[d <= -h]``, ``n += q``, output ``theta q``.  Backward
    with the rectangular surrogate ``h_a(y) = 1/alpha 1[|y| < alpha/2]`` on both
    spike functions, as autograd through the loop computes it:

        dL/dq = theta dL/dout + dL/dn,   dL/dd = dL/dq (h_a(d - h) + h_a(-d - h)),
        dL/dn[t-1] = dL/dn - dL/dd,       dL/dI = dL/dS[t-1] = dL/dS + dL/dd f'(S).
    """

    @staticmethod
    def forward(ctx, x: Tensor, v: Tensor, n: Tensor, theta: Tensor, alpha: float,
                slope: float, h: float):  # noqa: D102
        shapes = (v.shape, n.shape)
        v, n = v.expand_as(x[0]).clone(), n.expand_as(x[0]).clone()
        s_all, d_all = torch.empty_like(x), torch.empty_like(x)
        out = _signed_steps(x, v, n, theta, slope, h, s_all, d_all)
        ctx.save_for_backward(s_all, d_all, theta)
        ctx.alpha, ctx.slope, ctx.h, ctx.shapes = alpha, slope, h, shapes
        return out, v, n

    @staticmethod
    def backward(ctx, g_out: Tensor, g_v: Tensor, g_n: Tensor):  # noqa: D102
        s_all, d_all, theta = ctx.saved_tensors
        a, slope, h = ctx.alpha, ctx.slope, ctx.h
        g_x = torch.empty_like(s_all)
        gv = g_v.clone() if g_v is not None else torch.zeros_like(s_all[0])
        gn = g_n.clone() if g_n is not None else torch.zeros_like(s_all[0])
        for t in range(s_all.shape[0] - 1, -1, -1):
            d = d_all[t]
            sur = (((d - h).abs() < a / 2).to(gv.dtype) + ((-d - h).abs() < a / 2).to(gv.dtype)) / a
            gd = (theta * g_out[t] + gn) * sur
            gn = gn - gd
            gv = gv + gd * torch.where(s_all[t] >= 0, 1.0, slope) / theta     # f'(S)
            g_x[t] = gv
        return (g_x, _sum_to(gv, ctx.shapes[0]), _sum_to(gn, ctx.shapes[1]),
                None, None, None, None)


class IFNeuron(nn.Module):
    """IF neuron for a ReLU call site.

    Args:
        num_channels: channels C of the site.
        channel_wise: one threshold per channel (``(1, C, 1, 1)``) instead of one
            per layer (``(1, 1, 1, 1)``).

    Buffers ``threshold`` and ``v0`` are saved in checkpoints.  ``v0`` has shape
    ``(1, 1, 1, 1)``, ``(1, C, 1, 1)`` (per-channel: broadcasts to any H x W) or
    ``(1, C, H, W)`` (element-wise: fixed input size only).  On loading, buffers
    take the shape stored in the checkpoint.
    """

    signed = False
    #: ``forward(x, inplace=True)`` may write the spikes over ``x`` (SnnOps.act asks)
    fires_in_place = True

    def __init__(self, num_channels: int, channel_wise: bool = False):
        super().__init__()
        self.num_channels = num_channels
        c = num_channels if channel_wise else 1
        self.register_buffer('threshold', torch.ones(1, c, 1, 1))
        self.register_buffer('v0', torch.zeros(1, 1, 1, 1))
        self.v: Optional[Tensor] = None
        self._owned = ()
        #: set to a float to make the spike function differentiable (BPTT)
        self.surrogate_alpha: Optional[float] = None
        self.record = False
        self.reset_stats()

    # -- state -----------------------------------------------------------
    def reset(self) -> None:
        """Forget the membrane potential (called before every simulation)."""
        self.v = None
        self._owned = ()          # state tensors this neuron made and may step in place

    def _own_state(self, *state: Tensor) -> tuple:
        """The state to step in place: the tensors themselves when this neuron made them
        (its initial potential, or its previous no-grad step), else copies, so that a
        state someone assigned (BPTT calibration) or an autograd output is never
        written over.  Saves a full-size copy per neuron and time chunk."""
        mine = len(state) == len(self._owned) and all(
            a is b for a, b in zip(state, self._owned))
        return state if mine else tuple(t.clone() for t in state)

    def reset_stats(self) -> None:
        """Zero the spike counters used for firing rates and SOPs."""
        self.spike_count = 0.0
        self.neuron_steps = 0

    def initial_potential(self, like: Tensor) -> Tensor:
        """``v[0]`` broadcast to one time step of the input (``[B, C, H, W]``)."""
        v0 = self.v0
        if v0.dim() == 4 and v0.shape[-2:] != (1, 1) and v0.shape[-2:] != like.shape[-2:]:
            raise ValueError(
                f'element-wise initial potential of shape {tuple(v0.shape)} was calibrated '
                f'for {v0.shape[-2]}x{v0.shape[-1]} inputs but this input is '
                f'{like.shape[-2]}x{like.shape[-1]}; calibrate with '
                "potential granularity 'channel' for inputs of varying size")
        return v0.to(like.dtype).expand_as(like).clone(memory_format=step_format(like))

    # -- dynamics --------------------------------------------------------
    def _bptt(self) -> bool:
        """BPTT calibration (surrogate set, autograd on) runs the fused autograd node;
        everything else (simulation) steps the state in place without a graph."""
        return self.surrogate_alpha is not None and torch.is_grad_enabled()

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:
        """Run K steps. ``x``: input currents ``[K, B, C, H, W]``; returns ``s * theta``.
        ``inplace``: the caller gives ``x`` up, and a simulation step (not BPTT) writes
        the outputs over it (same values; no new K-step buffer)."""
        if self.v is None:
            self.v = self.initial_potential(x[0])
            self._owned = (self.v,)
        theta = self.threshold.to(x.dtype)
        if self._bptt():
            out, self.v = IFSteps.apply(x, self.v, theta, float(self.surrogate_alpha))
        else:
            with torch.no_grad():
                v, = self._own_state(self.v)
                out = _if_steps(x, v, theta, inplace=inplace)
            self.v = v
            self._owned = (v,)
        return self._record(out)

    def _record(self, out: Tensor) -> Tensor:
        """Count spikes (non-zero outputs) for firing rates when ``record`` is on."""
        if self.record:
            with torch.no_grad():
                self.spike_count += float((out != 0).sum())
                self.neuron_steps += out.numel()
        return out

    # -- checkpoint ------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        for name in ('threshold', 'v0'):
            key = prefix + name
            if key in state_dict:
                value = state_dict[key]
                if value.dim() != 4 or value.shape[1] not in (1, self.num_channels):
                    error_msgs.append(f'{key}: shape {tuple(value.shape)} does not fit '
                                      f'a site with {self.num_channels} channels')
                    continue
                setattr(self, name, torch.empty_like(value, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (f'channels={self.num_channels}, threshold={tuple(self.threshold.shape)}, '
                f'v0={tuple(self.v0.shape)}')


class SignedIFNeuron(IFNeuron):
    """Signed IF neuron for a Leaky-ReLU call site (seed 003 Sec. VI-F, Eq. 22).

    Asymmetric thresholds: positive spikes (value ``+theta``) count the
    integrated input ``S`` in steps of ``theta`` above zero, negative spikes
    (value ``-theta``) in steps of ``theta / slope`` below zero, so the rate
    approximates ``theta * clip(1/theta [LeakyReLU(x)]_{theta/T}, -1, 1)``.

    The membrane is kept as the integrated input ``S`` (``v``, starting at
    ``v0``) and the net spike count ``n``; with ``f(S) = S/theta`` for ``S >= 0``
    and ``slope S/theta`` below, a positive spike fires when ``f(S) - n >= h``
    and a negative one when ``n - f(S) >= h`` (at most one per step), i.e. reset
    by subtraction measured in each side's own threshold.  ``h = 1/2`` is the
    ClipRound shift (half thresholds; on the positive side exactly ``v0 =
    theta/2`` of the unsigned neuron), ``h = 1`` without it.  Keeping ``S``
    rather than ``S - n theta`` matters: after a negative spike a plain
    membrane would jump by ``theta/slope`` and overshoot the positive threshold.

    ``negative_slope = 1`` is the identity (a linear site: ``spiking_fpn``'s neurons on
    FPN's signed currents), symmetric thresholds ``+-theta``.

    ``negative_slope = 0`` is the ReLU limit (``ConversionConfig.relu_neuron =
    'signed'``; beyond the seeds, which put IF neurons at ReLU sites): ``f(S) =
    max(S, 0) / theta``, so a negative spike only takes back an earlier positive
    one (``n >= 0``) and the count follows ``round(max(S, 0) / theta)`` of the
    integrated input, one spike per step at most, whatever order the current
    arrives in.  An IF neuron that fired early on a current that later turns
    negative cannot take its spikes back (the unevenness error of seed 002 Sec. 4);
    this is the "signed neuron with memory" idea of Wang et al. (IJCAI 2022).
    """

    signed = True

    def __init__(self, num_channels: int, channel_wise: bool = False,
                 negative_slope: float = 0.1, rounding: bool = True):
        super().__init__(num_channels, channel_wise)
        if not 0 <= negative_slope <= 1:
            raise ValueError(f'negative_slope must be in [0, 1], got {negative_slope}')
        self.negative_slope = negative_slope
        self.rounding = rounding
        self.n: Optional[Tensor] = None

    def reset(self) -> None:
        super().reset()
        self.n = None

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:  # noqa: D102
        if self.v is None:
            self.v = self.initial_potential(x[0])
            self.n = torch.zeros_like(self.v)
            self._owned = (self.v, self.n)
        theta = self.threshold.to(x.dtype)
        h = 0.5 if self.rounding else 1.0
        if self._bptt():
            out, self.v, self.n = SignedIFSteps.apply(x, self.v, self.n, theta,
                                                      float(self.surrogate_alpha),
                                                      float(self.negative_slope), h)
        else:
            with torch.no_grad():
                v, n = self._own_state(self.v, self.n)
                out = _signed_steps(x, v, n, theta, self.negative_slope, h, inplace=inplace)
            self.v, self.n = v, n
            self._owned = (v, n)
        return self._record(out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', negative_slope={self.negative_slope}'


@NEURONS.register_module(name='if')
def build_if_neuron(site, channel_wise: bool = True, rounding: bool = True) -> IFNeuron:
    """The IF neuron with reset by subtraction (seed 001 Eq. 2-4) at a ReLU site."""
    return IFNeuron(site.channels, channel_wise)


@NEURONS.register_module(name='signed')
def build_signed_neuron(site, channel_wise: bool = True,
                        rounding: bool = True) -> SignedIFNeuron:
    """Seed 003's signed neuron (Eq. 22) with the site's negative slope; at a ReLU
    site, its slope-0 limit."""
    slope = site.negative_slope if getattr(site, 'signed', False) else 0.0
    return SignedIFNeuron(site.channels, channel_wise, slope, rounding=rounding)
