"""An exported NIR file simulated by runtimes no one here wrote, against snn-det's own run.

The file is read back with ``nir.read`` and simulated for T steps on the same input by
the modules of sinabs (the Speck toolchain) or Norse, wired by nirtorch
(:func:`runtime_module`; residual edges are summed there).  sinabs' ``IAF`` resets by
subtraction as snn-det's neuron does; its default reading of a NIR ``IF`` adds a
membrane floor ``v >= -v_threshold`` and up to ``floor(u / theta)`` spikes per step;
Norse follows NIR's ``IF`` equations (reset to ``v_reset`` = 0, fire when
``u > theta``).  Every site's
spikes are compared with the spikes of :meth:`SpikingNet.simulate` (a spike there is a
non-zero output ``theta s``), per element and step: identical, or the share of
element-steps that differ, the spike counts, and the readout's relative error.
"""
from typing import Dict, Optional

import torch
from torch import Tensor

from ..conversion.spiking_net import SpikingNet, site_key
from .nir import stem_current

#: runtimes :func:`check_nir` knows (see :func:`runtime_module`)
RUNTIMES = ('sinabs', 'sinabs_default', 'norse')


@torch.no_grad()
def snn_det_run(net: SpikingNet, image: Tensor, T: int) -> dict:
    """snn-det's own simulation: ``{'spikes': {site key: [T, B, C, H, W] spike counts},
    'readout': [stage outputs]}``."""
    spikes: Dict[str, list] = {}

    def rec(kind, name, t, steps):
        if kind == 'site_out':
            spikes.setdefault(site_key(name), []).append(
                (t != 0).to(torch.float32).reshape(steps, -1, *t.shape[1:]))
    rec.reads_site_in = False
    net.simulate(image, T, recorder=rec)
    readout = net.simulate(image, T)
    return dict(spikes={k: torch.cat(v) for k, v in spikes.items()}, readout=list(readout))


def _hooked(module, names) -> tuple:
    """Forward hooks on the modules of a nirtorch executor whose name is in ``names``,
    keeping each call's (first) output."""
    outs, hooks = {}, []
    for name, m in module.named_modules():
        key = name.split('.')[-1]
        if key in names:
            def hook(mod, inp, out, key=key):
                o = out[0] if isinstance(out, tuple) else out
                outs.setdefault(key, []).append(o.detach().clone())
            hooks.append(m.register_forward_hook(hook))
    return outs, hooks


def graph_input(net: SpikingNet, image: Tensor, graph) -> Tensor:
    """What the NIR graph's ``Input`` is fed at every step for this image."""
    return stem_current(net, image) if graph.metadata.get('input') == 'current' else image


def _sinabs_subtract_if(node):
    """sinabs' own IAF read as the file's metadata says (``reset='subtract'``): one spike
    per step at most, reset by subtraction, no membrane floor."""
    from sinabs.activation import MembraneSubtract, SingleSpike
    from sinabs.layers import IAFSqueeze
    return IAFSqueeze(spike_threshold=torch.from_numpy(node.v_threshold).float(),
                      spike_fn=SingleSpike, reset_fn=MembraneSubtract(), min_v_mem=None,
                      batch_size=1)


def runtime_module(graph, runtime: str):
    """``graph`` as a torch module of ``runtime``'s own neuron and layer modules, wired by
    ``nirtorch.nir_to_torch`` (torch.fx, in topological order):

    * ``sinabs``: sinabs' ``IAFSqueeze`` as a subtractive-reset IF (:func:`_sinabs_subtract_if`)
      and sinabs' own mapping of every other node;
    * ``sinabs_default``: sinabs' own mapping of an ``IF`` (``sinabs.nir``: ``MultiSpike``,
      subtractive reset, ``min_v_mem = -v_threshold``);
    * ``norse``: Norse's own mapping (``IAFCell``: reset to ``v_reset``, fire when
      ``u > v_threshold``).

    (The runtimes' ``from_nir`` entry points go through the deprecated ``nirtorch.load``,
    whose depth-first execution order runs a residual block's last neuron before its
    shortcut branch; ``nir_to_torch`` does not.  nirtorch 2.6 handles one ``Output`` node
    only (it re-queues two forever): all but the last are left out of the module; every
    site's spikes are read by hooks, those of the other outputs included.)"""
    import nir
    import nirtorch
    outs = sorted(k for k, v in graph.nodes.items() if isinstance(v, nir.Output))
    if len(outs) > 1:
        drop = set(outs[:-1])
        graph = nir.NIRGraph(nodes={k: v for k, v in graph.nodes.items() if k not in drop},
                             edges=[e for e in graph.edges if e[1] not in drop],
                             metadata=dict(graph.metadata), type_check=False)
    if runtime in ('sinabs', 'sinabs_default'):
        from sinabs.nir import _import_sinabs_module
        def mapped(node):  # noqa: E306
            if runtime == 'sinabs' and isinstance(node, nir.IF):
                return _sinabs_subtract_if(node)
            return _import_sinabs_module(node, batch_size=1, num_timesteps=None)
    elif runtime == 'norse':
        from norse.torch.utils.import_nir import _import_norse_module as mapped
    else:
        raise ValueError(f"unknown runtime '{runtime}'; choose from {RUNTIMES}")
    return nirtorch.nir_to_torch(graph, {t: mapped for t in (nir.IF, nir.Conv2d)})


@torch.no_grad()
def run_runtime(graph, x: Tensor, T: int, sites, runtime: str,
                module=None) -> Dict[str, Tensor]:
    """Per-site outputs ``[T, 1, C, H, W]`` (spike counts) of ``runtime`` simulating
    ``graph`` for T steps on the input ``x`` (one image, the same at every step);
    ``module``: the runtime's module of ``graph`` (:func:`runtime_module`), if built."""
    if x.shape[0] != 1:
        raise ValueError(f'the runtimes are run on one image, got a batch of {x.shape[0]}')
    model = module if module is not None else runtime_module(graph, runtime)
    for m in model.modules():       # sinabs keeps its membranes between calls
        if hasattr(m, 'reset_states'):
            m.reset_states()
    outs, hooks = _hooked(model, set(sites))
    try:
        if runtime.startswith('sinabs'):    # time folded into the batch, [T, C, H, W]
            model(x.expand(T, *x.shape[1:]))
            return {k: v[0].unsqueeze(1) for k, v in outs.items()}
        state = None
        for _ in range(T):                  # Norse: one call per step, state carried
            _, state = model(x) if state is None else model(x, state)
        return {k: torch.stack(v) for k, v in outs.items()}
    finally:
        for h in hooks:
            h.remove()


def compare(ours: dict, theirs: Dict[str, Tensor], graph, T: int) -> dict:
    """Per-site agreement and the readout's relative error (readout = mean spikes x
    v_threshold of each Output's IF, as the file's metadata says)."""
    per_site, total, differ, n_ours, n_theirs = {}, 0, 0, 0.0, 0.0
    for key, s in ours['spikes'].items():
        t = theirs.get(key)
        if t is None:
            raise KeyError(f'the runtime produced no output for site {key}')
        t = t.to(torch.float32)
        d = int((t != s).sum())
        per_site[key] = dict(identical=d == 0, differing_share=d / s.numel(),
                             spikes_snn_det=float(s.sum()), spikes_runtime=float(t.sum()),
                             max_spikes_per_step=float(t.max()))
        total += s.numel()
        differ += d
        n_ours += float(s.sum())
        n_theirs += float(t.sum())
    errs = []
    outputs = sorted(k for k in graph.nodes if k.startswith('output'))
    srcs = {dst: src for src, dst in graph.edges if dst in outputs}
    for i, name in enumerate(outputs):
        src = srcs[name]
        theta = torch.from_numpy(graph.nodes[src].v_threshold).to(torch.float32)
        rd = theirs[src].to(torch.float32).mean(0) * theta
        ref = ours['readout'][i]
        errs.append(float(((rd - ref) ** 2).sum() / (ref ** 2).sum().clamp_min(1e-12)))
    return dict(identical=differ == 0, differing_share=differ / max(total, 1),
                spikes_snn_det=n_ours, spikes_runtime=n_theirs,
                readout_rel_error=errs, sites=per_site)


def output_sources(graph) -> list:
    """The IF node feeding each ``Output`` of the graph, in the order of the outputs."""
    outputs = sorted(k for k in graph.nodes if k.startswith('output'))
    srcs = {dst: src for src, dst in graph.edges if dst in outputs}
    return [srcs[o] for o in outputs]


@torch.no_grad()
def runtime_readout(graph, x: Tensor, T: int, runtime: str, module=None) -> list:
    """The backbone readout as the file's metadata defines it, from ``runtime``'s run:
    mean spikes over T steps x ``v_threshold`` of each output's IF node."""
    srcs = output_sources(graph)
    spikes = run_runtime(graph, x, T, srcs, runtime, module)
    return [spikes[s].to(torch.float32).mean(0)
            * torch.from_numpy(graph.nodes[s].v_threshold).to(torch.float32) for s in srcs]


def check_nir(net: SpikingNet, graph, image: Tensor, T: Optional[int] = None,
              runtimes=RUNTIMES) -> dict:
    """Simulate ``graph`` (as read back by ``nir.read``) in each runtime on ``image`` for
    ``T`` steps (default: the net's) and compare with snn-det's own simulation."""
    T = int(T or net.num_steps)
    ours = snn_det_run(net, image, T)
    x = graph_input(net, image, graph)
    out = dict(T=T, image_shape=list(image.shape[1:]), input=graph.metadata.get('input'))
    for rt in runtimes:
        out[rt] = compare(ours, run_runtime(graph, x, T, ours['spikes'].keys(), rt), graph, T)
    return out
