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
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..conversion.ops import AnnOps
from ..conversion.spiking_net import SpikingNet, site_key

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


def check_exportable(net: SpikingNet, input: str = 'image') -> None:
    """Raise :class:`NIRExportError` on the first thing NIR cannot express exactly."""
    from ..conversion.graphs.resnet import ResNetGraph
    graph = net.graph
    if input not in INPUTS:
        raise NIRExportError(f"input must be one of {INPUTS}, got '{input}'")
    if not isinstance(graph, ResNetGraph) or type(graph) is not ResNetGraph:
        raise NIRExportError(
            f'{type(graph).__name__}: NIR export covers ResNet backbones at scope=backbone '
            '(a neck\'s outputs are analog currents and FPN upsamples; no NIR node is either)')
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
    for site in graph.sites:
        neuron = net.neuron(site.name)
        if neuron.signed:
            raise NIRExportError(f'site {site.name}: signed neuron (negative spikes) has no '
                                 'NIR node')
        v0 = neuron.v0
        if bool((v0 != 0).any()):
            raise NIRExportError(
                f'site {site.name}: initial potential v0 (max |v0| {float(v0.abs().max()):.4g}) '
                'has no NIR field; convert with --shift bias and without potential '
                'calibration (acp)')


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


def _if_node(nir, theta: Tensor, shape):
    """One IF node over a ``(C, H, W)`` site: NIR types a neuron by its parameters' shape,
    so they are given per element (``theta`` repeated over H x W)."""
    c, h, w = shape
    th = np.ascontiguousarray(np.broadcast_to(_np(theta).reshape(c, 1, 1), (c, h, w)))
    return nir.IF(r=np.ones((c, h, w), np.float32), v_threshold=th,
                  v_reset=np.zeros((c, h, w), np.float32))


def to_nir(net: SpikingNet, image_shape: Tuple[int, int, int], input: str = 'image',
           metadata: Optional[dict] = None):
    """The NIR graph of ``net`` for images of shape ``(C, H, W)`` (see the module doc).
    Node names are the site / convolution keys of ``net`` (``layer1_0_conv1``)."""
    nir = _require_nir()
    check_exportable(net, input)
    graph = net.graph
    shapes = _shapes(net, tuple(image_shape))
    nodes, edges = {}, []

    def add(name, node, *srcs):
        nodes[name] = node
        edges.extend((s, name) for s in srcs)

    # stem
    if input == 'image':
        add('input', nir.Input(input_type={'input': np.array(image_shape)}))
        add('conv1', _conv_node(nir, net.conv('conv1'), shapes[('conv_in', 'conv1')][1:], None),
            'input')
        add('relu', _if_node(nir, _theta(net, 'relu', graph.site('relu').channels),
                             shapes[('site_in', 'relu')]), 'conv1')
    else:
        add('input', nir.Input(input_type={'input': np.array(shapes[('site_in', 'relu')])}))
        add('relu', _if_node(nir, _theta(net, 'relu', graph.site('relu').channels),
                             shapes[('site_in', 'relu')]), 'input')
    src = 'relu'
    out_sites: List[str] = []
    if 0 in graph.out_segments:
        out_sites.append('relu')
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
                add(prev, _if_node(nir, th_prev, shapes[('site_in', site)]), cname)
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
        add(last, _if_node(nir, _theta(net, site, graph.site(site).channels),
                           shapes[('site_in', site)]), site_key(f'{prefix}.conv{n}'), sc)
        src = last
        seg = graph.segment_of(site)
        if seg in graph.out_segments:
            out_sites.append(last)
    outputs = {}
    for i, s in enumerate(out_sites):
        name = f'output{i}'
        shape = shapes[('site_in', _site_name(graph, s))]
        add(name, nir.Output(output_type={'output': np.array(shape)}), s)
        outputs[name] = _site_name(graph, s)
    meta = dict(producer='snn-det', T=int(net.num_steps), neuron='IF', reset='subtract',
                reset_note='u = v + I; s = 1[u >= v_threshold]; v = u - v_threshold s '
                           '(reset by subtraction, v(0) = 0); one step per time step, dt = 1',
                input=input, encoding='direct: the same analog input at every time step',
                readout=READOUT, outputs=str(outputs))
    if input == 'current':
        p = graph.backbone.maxpool
        meta['input_note'] = (f'input = maxpool(conv1(image)), MaxPool2d(kernel '
                              f'{p.kernel_size}, stride {p.stride}, padding {p.padding}) on '
                              'the folded stem convolution, computed once per image')
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


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
    tmp = path + '.tmp'
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    try:
        nir.write(tmp, g)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return g
