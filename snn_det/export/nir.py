"""A converted spiking ResNet as a Neuromorphic Intermediate Representation graph.

NIR (Pedersen et al., Nat. Commun. 2024; PyPI ``nir``) is the exchange format that
sinabs (Speck), Lava-DL (Loihi 2), Rockpool, SpiNNaker2, Norse and snnTorch read.  A
:class:`~snn_det.conversion.spiking_net.SpikingNet` of a ResNet backbone maps onto it
as follows (the neuron of seed 001 Eq. 2-4: ``u = v + I``, ``s = 1[u >= theta]``,
``v = u - theta s``, output ``theta s``):

* each folded convolution (BN folded, Eq. 25; calibrated bias) -> ``Conv2d`` with bias;
  the spikes it reads are binary in NIR, so the threshold of the site that feeds it is
  folded into its weights: ``W'[o, i] = W[o, i] theta_src[i]`` (the same products as
  ``W * (theta s)``);
* each activation site -> one ``IF`` node (``r = 1``, ``v_threshold = theta`` of its
  channel, ``v_reset = 0``), per element ``(C, H, W)``: NIR types a node by the shape
  of its parameters, so a file for one input size;
* a residual addition -> two edges into the block's last ``IF``; an identity shortcut
  carries ``theta_src s`` through a 1x1 ``Conv2d`` with weights ``diag(theta_src)`` and
  no bias (NIR's ``Scale`` would say the same, but no runtime reads it);
* the input: the image (``input='image'``, the stem convolution a ``Conv2d`` fed the
  same image at every step, i.e. direct encoding), or the stem's analog current
  (``input='current'``: ``maxpool(conv1(image))``, computed once per image by the host
  and fed at every step), the only exact form of a stem with a max-pool: NIR has no
  max-pooling, and the pool precedes the stem neuron (``maxpool(relu(z)) =
  relu(maxpool(z))``);
* each backbone output (``out_indices``) -> an ``Output`` fed by its stage's last
  ``IF``; the readout is the mean over T steps of its spikes times that node's
  ``v_threshold`` (metadata ``readout``).

Reset: NIR's ``IF`` resets to ``v_reset``; the neurons here reset by subtraction.  The
file records ``reset='subtract'`` in its metadata.  sinabs' ``from_nir`` reads an ``IF``
as its ``IAF`` with subtractive reset (with a floor ``v >= -theta`` and several spikes
per step when ``u >= 2 theta``); a reader following NIR's equations (Norse) resets to 0.
:mod:`snn_det.export.check` measures both against snn-det's own simulation.

Refused, with one line naming the site or module and the feature: signed neurons, a
non-zero initial potential ``v0`` (no NIR field; convert with ``--shift bias`` and no
potential calibration), a max-pool over an image input (use ``input='current'``), a
deep stem, average-pooled shortcuts, and graphs other than a ResNet backbone (the FPN's
outputs are analog currents and its top-down path upsamples: no NIR node says either).
"""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..conversion.ops import AnnOps
from ..conversion.spiking_net import SpikingNet, site_key
from ..registry import GRAPHS, NIR_GRAPHS, NIR_NODES
from ..utils.checkpoint import atomic_output

INPUTS = ('image', 'current')
READOUT = ('mean over the T steps of the output spikes, times the v_threshold of the IF '
           'node feeding the Output')


class NIRExportError(ValueError):
    """What NIR cannot express exactly; the message names the site and the feature."""


def _require_nir():
    try:
        import nir
    except ImportError:
        raise NIRExportError('NIR export needs the nir package: pip install nir==1.0.8') \
            from None
    return nir


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _is_identity_pool(pool: nn.Module) -> bool:
    def one(v):
        return all(x == 1 for x in (v if isinstance(v, (tuple, list)) else (v,)))
    return isinstance(pool, nn.MaxPool2d) and one(pool.kernel_size) and one(pool.stride) \
        and not any(pool.padding if isinstance(pool.padding, (tuple, list))
                    else (pool.padding,))


def graph_kind(graph) -> str:
    """The :data:`~snn_det.registry.GRAPHS` name of ``graph``'s class (``'ResNet'``)."""
    GRAPHS.import_from_location()
    return next((name for name, cls in GRAPHS.module_dict.items() if cls is type(graph)),
                type(graph).__name__)


#: why the graphs without a NIR exporter have none
_NO_EXPORT = {'FPN': "FPN's outputs are analog currents (or signed spikes with "
                     '--spiking-fpn) and its top-down path upsamples; no NIR node is either',
              'Darknet': "Darknet's Leaky-ReLU sites take signed neurons, which have no NIR node"}


def check_exportable(net: SpikingNet, input: str = 'image') -> None:
    """Raise :class:`NIRExportError` on the first thing NIR cannot express exactly: a graph
    without a registered exporter (:data:`~snn_det.registry.NIR_GRAPHS`), a neuron without
    a registered node (:data:`~snn_det.registry.NIR_NODES`), or what the exporter refuses."""
    graph = net.graph
    if input not in INPUTS:
        raise NIRExportError(f"input must be one of {INPUTS}, got '{input}'")
    kind = graph_kind(graph)
    NIR_GRAPHS.import_from_location()
    if kind not in NIR_GRAPHS.module_dict:
        raise NIRExportError(
            f'{kind}: no NIR export for this graph (NIR export covers '
            f'{sorted(NIR_GRAPHS.module_dict)} backbones at scope=backbone; '
            + _NO_EXPORT.get(kind, 'no exporter registered in snn_det.registry.NIR_GRAPHS')
            + ')')
    for site in graph.sites:
        neuron = net.neuron(site.name)
        if type(neuron).__name__ not in NIR_NODES.module_dict:
            what = ('signed neuron (negative spikes)' if getattr(neuron, 'signed', False)
                    else type(neuron).__name__)
            raise NIRExportError(f'site {site.name}: {what} has no NIR node')
        v0 = neuron.v0
        if bool((v0 != 0).any()):
            raise NIRExportError(
                f'site {site.name}: initial potential v0 (max |v0| {float(v0.abs().max()):.4g}) '
                'has no NIR field; convert with --shift bias and without potential '
                'calibration (acp)')
    NIR_GRAPHS.get(kind).check(net, input)


def _check_resnet(net: SpikingNet, input: str) -> None:
    graph = net.graph
    if graph.deep_stem:
        raise NIRExportError('stem: a deep stem pools currents that change over time before '
                             'its last neuron; NIR has no max-pooling')
    if input == 'image' and not _is_identity_pool(graph.backbone.maxpool):
        p = graph.backbone.maxpool
        raise NIRExportError(
            f'maxpool: MaxPool2d(kernel {p.kernel_size}, stride {p.stride}) after conv1 has no '
            "NIR node; export with input='current' (--input current): the graph's input is "
            'then maxpool(conv1(image)), computed once per image, which is exact')
    for *_, prefix, block, n, ds_conv in graph.blocks:
        if ds_conv is not None and isinstance(block.downsample[0], nn.AvgPool2d):
            raise NIRExportError(f'{prefix}.downsample.0: AvgPool2d shortcuts (ResNetV1d) '
                                 'are not exported')


@torch.no_grad()
def _shapes(net: SpikingNet, image_shape: Tuple[int, int, int]) -> Dict[str, tuple]:
    """``(C, H, W)`` of every convolution's input and every site's input, by an ANN pass."""
    shapes = {}

    def rec(kind, name, t, steps):
        shapes[(kind, name)] = tuple(t.shape[1:])
    x = torch.zeros(1, *image_shape)
    net.graph.forward(x, AnnOps(net.graph, recorder=rec))
    return shapes


def _theta(net: SpikingNet, site: str, channels: int) -> Tensor:
    th = net.neuron(site).threshold.reshape(-1).to(torch.float32)
    return th.expand(channels).clone() if th.numel() == 1 else th.clone()


def _conv_node(nir, conv: nn.Conv2d, in_hw, theta_src: Optional[Tensor]):
    """``Conv2d`` of a folded convolution; ``theta_src`` folded into its weights."""
    w = conv.weight.detach().to(torch.float32)
    if theta_src is not None:
        cout, cin_g = w.shape[:2]
        g = conv.groups
        per_w = theta_src.view(g, cin_g)[torch.arange(cout) // (cout // g)]   # [cout, cin_g]
        w = w * per_w[:, :, None, None]
    b = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    return nir.Conv2d(input_shape=np.array(in_hw), weight=_np(w), stride=np.array(conv.stride),
                      padding=np.array(conv.padding), dilation=np.array(conv.dilation),
                      groups=conv.groups, bias=_np(b))


@NIR_NODES.register_module(name='IFNeuron')
def if_node(nir, neuron: nn.Module, theta: Tensor, shape):
    """One IF node over a ``(C, H, W)`` site (seed 001 Eq. 2-4; reset by subtraction is
    recorded in the metadata): NIR types a neuron by its parameters' shape, so they are
    given per element (``theta`` repeated over H x W)."""
    c, h, w = shape
    th = np.ascontiguousarray(np.broadcast_to(_np(theta).reshape(c, 1, 1), (c, h, w)))
    return nir.IF(r=np.ones((c, h, w), np.float32), v_threshold=th,
                  v_reset=np.zeros((c, h, w), np.float32))


def _neuron_node(nir, net: SpikingNet, site: str, shape):
    """The node of ``site``'s neuron, from the builder registered for its class."""
    neuron = net.neuron(site)
    theta = _theta(net, site, net.graph.site(site).channels)
    return NIR_NODES.get(type(neuron).__name__)(nir, neuron, theta, shape)


class _Graph:
    """What a graph exporter adds to: nodes, edges, and the backbone outputs."""

    def __init__(self):
        self.nodes, self.edges, self.outputs = {}, [], []

    def add(self, name, node, *srcs):
        self.nodes[name] = node
        self.edges.extend((s, name) for s in srcs)


def _resnet_nodes(nir, net: SpikingNet, image_shape, input: str, shapes, g: _Graph) -> dict:
    """A ResNet backbone's nodes and edges (see the module doc); returns extra metadata."""
    graph = net.graph
    add = g.add
    if input == 'image':
        add('input', nir.Input(input_type={'input': np.array(image_shape)}))
        add('conv1', _conv_node(nir, net.conv('conv1'), shapes[('conv_in', 'conv1')][1:], None),
            'input')
        add('relu', _neuron_node(nir, net, 'relu', shapes[('site_in', 'relu')]), 'conv1')
    else:
        add('input', nir.Input(input_type={'input': np.array(shapes[('site_in', 'relu')])}))
        add('relu', _neuron_node(nir, net, 'relu', shapes[('site_in', 'relu')]), 'input')
    src = 'relu'
    if 0 in graph.out_segments:
        g.outputs.append('relu')
    for k, (stage, prefix, block, n, ds_conv) in enumerate(graph.blocks):
        block_in = src
        th_in = _theta(net, _site_name(graph, block_in), _channels(graph, block_in))
        prev, th_prev = block_in, th_in
        last = site_key(f'{prefix}.act_out')
        for j in range(1, n + 1):
            path = f'{prefix}.conv{j}'
            cname = site_key(path)
            add(cname, _conv_node(nir, net.conv(path), shapes[('conv_in', path)][1:], th_prev),
                prev)
            if j < n:
                site = f'{prefix}.act{j}'
                th_prev = _theta(net, site, graph.site(site).channels)
                prev = site_key(site)
                add(prev, _neuron_node(nir, net, site, shapes[('site_in', site)]), cname)
        if ds_conv is not None:
            sc = site_key(ds_conv)
            add(sc, _conv_node(nir, net.conv(ds_conv), shapes[('conv_in', ds_conv)][1:], th_in),
                block_in)
        else:     # identity: theta_src s through a diagonal 1x1 convolution
            sc = site_key(f'{prefix}.shortcut')
            c = th_in.numel()
            add(sc, nir.Conv2d(input_shape=np.array(shapes[('site_in', f'{prefix}.act_out')][1:]),
                               weight=_np(torch.diag(th_in)).reshape(c, c, 1, 1),
                               stride=np.array([1, 1]), padding=np.array([0, 0]),
                               dilation=np.array([1, 1]), groups=1,
                               bias=np.zeros(c, np.float32)), block_in)
        site = f'{prefix}.act_out'
        add(last, _neuron_node(nir, net, site, shapes[('site_in', site)]),
            site_key(f'{prefix}.conv{n}'), sc)
        src = last
        if graph.segment_of(site) in graph.out_segments:
            g.outputs.append(last)
    if input != 'current':
        return {}
    p = graph.backbone.maxpool
    return dict(input_note=f'input = maxpool(conv1(image)), MaxPool2d(kernel {p.kernel_size}, '
                           f'stride {p.stride}, padding {p.padding}) on the folded stem '
                           'convolution, computed once per image')


@NIR_GRAPHS.register_module(name='ResNet')
class ResNetExport:
    """NIR export of :class:`~snn_det.conversion.graphs.resnet.ResNetGraph`."""
    check = staticmethod(_check_resnet)
    build = staticmethod(_resnet_nodes)


def to_nir(net: SpikingNet, image_shape: Tuple[int, int, int], input: str = 'image',
           metadata: Optional[dict] = None):
    """The NIR graph of ``net`` for images of shape ``(C, H, W)`` (see the module doc),
    built by the exporter registered for its graph.  Node names are the site /
    convolution keys of ``net`` (``layer1_0_conv1``)."""
    nir = _require_nir()
    check_exportable(net, input)
    shapes = _shapes(net, tuple(image_shape))
    g = _Graph()
    extra = NIR_GRAPHS.get(graph_kind(net.graph)).build(nir, net, tuple(image_shape), input,
                                                        shapes, g)
    outputs = {}
    for i, s in enumerate(g.outputs):
        name = f'output{i}'
        shape = shapes[('site_in', _site_name(net.graph, s))]
        g.add(name, nir.Output(output_type={'output': np.array(shape)}), s)
        outputs[name] = _site_name(net.graph, s)
    meta = dict(producer='snn-det', T=int(net.num_steps), neuron='IF', reset='subtract',
                reset_note='u = v + I; s = 1[u >= v_threshold]; v = u - v_threshold s '
                           '(reset by subtraction, v(0) = 0); one step per time step, dt = 1',
                input=input, encoding='direct: the same analog input at every time step',
                readout=READOUT, outputs=str(outputs), **extra)
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata=meta)


def _site_name(graph, key: str) -> str:
    for s in graph.sites:
        if site_key(s.name) == key:
            return s.name
    raise KeyError(key)


def _channels(graph, key: str) -> int:
    return graph.site(_site_name(graph, key)).channels


def stem_current(net: SpikingNet, image: Tensor) -> Tensor:
    """The analog input of an ``input='current'`` export: ``maxpool(conv1(image))``."""
    with torch.no_grad():
        return net.graph.backbone.maxpool(net.conv('conv1')(image))


def export_nir(net: SpikingNet, path: str, image_shape: Tuple[int, int, int],
               input: str = 'image', metadata: Optional[dict] = None):
    """Write ``net`` as a NIR file (HDF5, ``nir.write``) at ``path``, atomically: the graph
    is built and written under a temporary name first, so a refused or failed export
    leaves no file.  Returns the graph."""
    nir = _require_nir()
    g = to_nir(net, image_shape, input, metadata)
    with atomic_output(path, '.nir') as tmp:
        nir.write(tmp, g)
    return g
