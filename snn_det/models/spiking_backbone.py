"""``SpikingBackbone``: the registered wrapper that turns any supported mmdet
backbone (ResNet, Darknet) into a spiking network of IF neurons.

Config::

    backbone=dict(
        type='SpikingBackbone',
        backbone=dict(type='ResNet', depth=50, ...),   # any supported backbone
        T=32,                                          # steps simulated by forward
        conversion=dict(threshold='mmse', channel_wise=True, shift='potential',
                        calib=['bias']),               # see ConversionConfig
        converted_T=[32],                              # set by tools/convert.py
        scope='backbone',                              # or 'neck', 'full' (issue 13)
        channels_last=False,                           # simulate in channels-last layout
    )

``channels_last=True`` (``tools/test.py --channels-last``) simulates with the image,
and so every convolution input and spike train, in channels-last memory layout:
oneDNN's convolutions are faster so on CPUs (docs/results/simulation_speed), and the
fused neuron kernels read that layout directly.  The numbers are not bit-identical to
the default layout (the convolutions sum in another order, so a spike may move at a
tie).  Calibration runs in the default layout unless asked (``channels_last=True`` in
the conversion options, ``tools/convert.py --calib-channels-last``).

``scope='neck'`` / ``'full'`` make the detector's neck (and head, up to its
prediction convolutions) spiking as well: the model is then built as
``type='SpikingDetector'`` (:mod:`snn_det.models.spiking_detector`), which
attaches the neck and head to this wrapper (:meth:`SpikingBackbone.attach`);
one graph, one spiking net per T and one simulation then cover the whole scope.

The wrapped backbone's modules are adopted under their own names, so the state
dict keys stay ``backbone.conv1.weight`` etc. and model-zoo / ANN checkpoints
load unchanged.  Conversion results live under ``backbone.snn.T<T>.*`` (folded
convolutions, thresholds, initial potentials), one set per calibrated T; a
config listing ``converted_T`` refuses a checkpoint that lacks them.

``mode='ann'`` runs the wrapped backbone itself; ``mode='snn'`` simulates
``T`` steps with the set converted for that T (or the closest converted T).
Nothing in here is detection-specific: the same wrapper is the backbone of the
image classifier.
"""
import numbers
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS

from ..conversion.config import ConversionConfig
from ..conversion.errors import ConversionStateError
from ..conversion.errors import UnsupportedModuleError
from ..conversion.graphs import build_graph
from ..conversion.graphs.detector import check_scope
from ..conversion.ops import AnnOps
from ..conversion.spiking_net import SIGNED_RELU_KEY, SpikingNet, site_key
from ..runtime.cache import CalibrationCache
from ..runtime.spike_codes import encode


class HeadOutputs(tuple):
    """A head's forward output computed by a fully spiking scope; the detector's
    patched head returns it as its own forward output (``SpikingDetector``)."""


class TwoStageOutputs(tuple):
    """``(cls_score, bbox_pred)`` of a fully spiking RoI head and ``proposals``, the RPN
    results (mmdet ``InstanceData`` per image) they were computed for; the detector's
    patched RPN and RoI heads hand them to mmdet's own post-processing."""

    def __new__(cls, outs, proposals):
        self = super().__new__(cls, outs)
        self.proposals = proposals
        return self


def spike_stash():
    """Keep a two-stage simulation's first-phase states (the backbone's spike trains,
    T x the backbone's outputs) exactly in bits (1 per neuron-step) until the second
    phase: ~30x less memory than floats (:mod:`~snn_det.runtime.spike_codes`)."""
    cache = CalibrationCache()

    def stash(state):
        codes = {k: encode(cache, v) for k, v in state.items()}
        return lambda: {k: e.decode() for k, e in codes.items()}
    stash.cache = cache          # what it keeps (checked against the free memory)
    return stash


@MODELS.register_module()
class SpikingBackbone(BaseModule):
    """Spiking wrapper around an mmdet backbone (see module docstring)."""

    def __init__(self, backbone: dict, T: int = 32, conversion: Optional[dict] = None,
                 converted_T: Sequence[int] = (), chunk_size: Optional[int] = None,
                 mode: Optional[str] = None, act_cfg: Optional[dict] = None,
                 scope: str = 'backbone', channels_last: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        ann = MODELS.build(backbone)
        # adopt the ANN's children: state-dict keys stay those of the ANN
        for name, child in ann.named_children():
            self.add_module(name, child)
        self.__dict__['_ann'] = ann          # not a registered child (no duplicate keys)
        self.backbone_graph = self.graph = build_graph(ann)
        self.scope = check_scope(scope)
        self.attached = self.scope == 'backbone'   # neck / head given by attach()
        self.conversion = ConversionConfig.from_dict(conversion or {})
        if self.conversion.spiking_fpn and self.scope == 'backbone':
            raise ValueError("spiking_fpn needs scope 'full' (or 'neck'): with scope "
                             "'backbone' FPN runs as an ANN on the backbone's rates")
        self.T = self._check_T(T)
        self.chunk_size = chunk_size
        self.channels_last = bool(channels_last)
        self._converted_T = [self._check_T(t) for t in converted_T]
        self._act_cfg = act_cfg
        self.snn = nn.ModuleDict()
        self.site_acts = nn.ModuleDict()
        self._build_placeholders()
        self.mode = mode or ('snn' if len(self.snn) else 'ann')

    def _build_placeholders(self) -> None:
        """Converted nets to be filled from a checkpoint, and QC activations, per site of
        the current graph (rebuilt when :meth:`attach` extends the graph)."""
        for t in self._converted_T:
            self.snn[f'T{t}'] = SpikingNet(self.graph, t, self.conversion.channel_wise,
                                           self.conversion.rounding, fold=False,
                                           relu_neuron=self.conversion.relu_neuron)
        if self._act_cfg is not None:
            from ..neurons.qc import build_site_activation
            for site in self.graph.sites:
                key = site_key(site.name)
                if key not in self.site_acts:
                    self.site_acts[key] = build_site_activation(self._act_cfg, site, self.T)

    def attach(self, neck: Optional[nn.Module], head: Optional[nn.Module] = None,
               rpn_head: Optional[nn.Module] = None,
               roi_head: Optional[nn.Module] = None) -> None:
        """Extend the spiking scope past the backbone: to ``neck`` (``scope='neck'``) and
        to ``head`` (``'full'``; a two-stage detector: ``rpn_head`` and ``roi_head``).
        Called by ``SpikingDetector`` once the detector exists; the modules stay the
        detector's (their state-dict keys are unchanged)."""
        from ..conversion.graphs.detector import DetectorGraph, build_part_graph
        if self.scope == 'backbone':
            raise ValueError("scope='backbone' has nothing to attach")
        if neck is None:
            raise UnsupportedModuleError('neck', 'None', f"scope='{self.scope}' needs a neck")
        spiking_fpn = self.conversion.spiking_fpn
        if self.scope == 'full' and roi_head is not None:
            if spiking_fpn:
                raise UnsupportedModuleError(
                    'neck', neck, 'spiking_fpn is for single-stage detectors: a two-stage '
                    "detector runs FPN again for its RoI head, whose neurons' state would "
                    'step twice')
            parts = [build_part_graph((neck, rpn_head, roi_head), 'roi_head')]
        else:
            parts = [build_part_graph(neck, 'neck', spiking=spiking_fpn)]
        if self.scope == 'full' and roi_head is None:
            parts.append(build_part_graph(head, 'bbox_head'))
        self.graph = DetectorGraph(self.backbone_graph, parts, self.scope)
        self.snn = nn.ModuleDict()
        self._build_placeholders()
        self.attached = True

    # -- helpers ---------------------------------------------------------
    @staticmethod
    def _check_T(T) -> int:
        if isinstance(T, bool) or not isinstance(T, numbers.Real) or int(T) != T or T < 1:
            raise ValueError(f'T must be a positive integer number of time steps, got {T!r}')
        return int(T)

    @property
    def ann(self) -> nn.Module:
        """The wrapped ANN backbone (its modules are this wrapper's children)."""
        return self._ann

    @property
    def converted_T(self) -> List[int]:
        return sorted(int(k[1:]) for k in self.snn.keys())

    def set_mode(self, mode: str, T: Optional[int] = None) -> None:
        """Switch between the ANN (``'ann'``) and the SNN simulated for ``T`` steps."""
        if mode not in ('ann', 'snn'):
            raise ValueError(f"mode must be 'ann' or 'snn', got {mode!r}")
        if T is not None:
            self.T = self._check_T(T)
        self.mode = mode

    def spiking_net(self, T: Optional[int] = None) -> SpikingNet:
        """The converted network used for ``T`` steps: its own, else the closest T."""
        T = self.T if T is None else T
        if not len(self.snn):
            raise ConversionStateError(
                'this SpikingBackbone has not been converted yet: run tools/convert.py '
                '(or snn_det.apis.convert_model) before simulating it')
        key = f'T{T}'
        if key in self.snn:
            return self.snn[key]
        closest = min(self.converted_T, key=lambda t: (abs(t - T), -t))
        return self.snn[f'T{closest}']

    def add_spiking_net(self, net: SpikingNet) -> None:
        self.snn[f'T{net.num_steps}'] = net

    def site_activations(self) -> Dict[str, nn.Module]:
        return {s.name: self.site_acts[site_key(s.name)]
                for s in self.graph.sites if site_key(s.name) in self.site_acts}

    # -- forward ---------------------------------------------------------
    def share_readouts(self, T_list: Optional[Sequence[int]]) -> None:
        """Read several T out of one simulation (``None`` turns it off).

        While on, the first forward of a batch simulates ``max(T_list)`` steps once
        (:meth:`SpikingNet.simulate_prefixes`) and keeps every T's readout; later
        forwards of the same batch (call :meth:`next_batch` between batches) return
        the readout of the current ``self.T``.  All of ``T_list`` must use the same
        converted network.
        """
        if T_list and getattr(self.graph, 'barrier', None) is not None:
            T_list = None     # a two-stage scope: each T needs its own proposals first
        if T_list:
            nets = {id(self.spiking_net(t)) for t in T_list}
            if len(nets) != 1:
                raise ValueError(f'T={list(T_list)} use different converted networks; '
                                 'share readouts only among T of one calibration')
        self._shared_T = sorted(set(T_list)) if T_list else None
        self._readouts = {}

    def next_batch(self) -> None:
        """Forget the readouts shared within one batch (see :meth:`share_readouts`)."""
        self._readouts = {}

    def forward(self, x: Tensor) -> tuple:
        """The backbone's outputs (``scope='backbone'``), the neck's (``'neck'``) or the
        head's forward output (``'full'``, see :class:`HeadOutputs`): of the ANN, or
        time-averaged over ``T`` steps of the SNN."""
        if not self.attached:
            raise ConversionStateError(
                f"scope='{self.scope}' makes the neck/head spiking: build the model as "
                "type='SpikingDetector' (tools/convert.py --scope does) so that they are "
                'attached to the backbone')
        outs = self._forward(x)
        if self.mode == 'snn' and self.channels_last:
            # the readout goes on to MMDetection's own modules, which read the default
            # layout (mmcv's RoIAlign reads any input as NCHW memory)
            outs = tuple(o.contiguous() if isinstance(o, Tensor) else o for o in outs)
        return self.format_outputs(outs)

    def _forward(self, x: Tensor) -> tuple:
        if self.mode == 'snn':
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            shared = getattr(self, '_shared_T', None)
            if shared and self.T in shared:
                if not self._readouts:
                    self._readouts = self.spiking_net(self.T).simulate_prefixes(
                        x, shared, self.chunk_size)
                return self._readouts[self.T]
            stash = spike_stash() if getattr(self.graph, 'barrier', None) is not None else None
            return self.spiking_net(self.T).simulate(x, self.T, self.chunk_size, stash=stash)
        if len(self.site_acts) or self.scope != 'backbone':
            return self.graph.forward(x, AnnOps(self.graph, self.site_activations()))
        return self._ann(x)

    def format_outputs(self, outs: tuple):
        if self.scope == 'full' and getattr(self.graph, 'barrier', None) is not None:
            return TwoStageOutputs(self.graph.format_outputs(outs),
                                   self.graph.parts[-1].last_proposals)
        if self.scope == 'full':
            return HeadOutputs(self.graph.format_outputs(outs))
        return outs

    def init_weights(self) -> None:
        # a parent's init_weights() keeps its bookkeeping in _params_init_info; the
        # wrapped ANN must share it (and not delete it as a top-level model would)
        info = getattr(self, '_params_init_info', None)
        if info is not None:
            self._ann._params_init_info = info
        try:
            self._ann.init_weights()
        finally:
            if info is not None and hasattr(self._ann, '_params_init_info'):
                del self._ann._params_init_info
        self._is_init = True

    def train(self, mode: bool = True):
        super().train(mode)
        self._ann.train(mode)     # keeps norm_eval / frozen_stages of the ANN
        return self

    # -- checkpoint ------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        expected = [prefix + 'snn.' + k for k in self.snn.state_dict().keys()]
        missing = [k for k in expected if k not in state_dict]
        own_T = {f'T{t}' for t in self.converted_T}
        signed = any(f'{prefix}snn.{t}.{SIGNED_RELU_KEY}' in state_dict for t in own_T)
        if own_T and signed != (self.conversion.relu_neuron == 'signed'):
            have = 'signed' if signed else 'if'
            raise ConversionStateError(
                f"checkpoint was converted with relu_neuron='{have}', this config has "
                f"relu_neuron='{self.conversion.relu_neuron}'; use the config written with it")
        if missing:
            have = sorted({k[len(prefix) + 4:].split('.')[0] for k in state_dict
                           if k.startswith(prefix + 'snn.T')})
            raise ConversionStateError(
                f'checkpoint lacks the converted state of {len(missing)} buffers/parameters '
                f'for T={self.converted_T}, scope={self.scope!r} (first: {missing[0]}; it has '
                f'{", ".join(have) or "no converted T"}); load a checkpoint written by '
                'tools/convert.py for these T, or drop converted_T from the config to '
                'convert anew')
        known = set(expected)
        extra = [k for k in state_dict if k.startswith(prefix + 'snn.') and k not in known
                 and k[len(prefix) + 4:].split('.')[0] in own_T]
        if extra:
            raise ConversionStateError(
                f'checkpoint has converted state this config (scope={self.scope!r}) does not '
                f'have (first: {extra[0]}): it was converted with another --scope; use the '
                'config written with it')
        if len(self.snn):   # a converted checkpoint must be of this very backbone
            for key, value in self.state_dict(prefix=prefix, keep_vars=True).items():
                if key.startswith(prefix + 'site_acts.'):
                    continue
                got = state_dict.get(key)
                if got is None and not key.startswith(prefix + 'snn.'):
                    raise ConversionStateError(
                        f'checkpoint has no {key}: it was converted from another backbone '
                        f'than this config\'s {type(self._ann).__name__}')
                if got is not None and tuple(got.shape) != tuple(value.shape) and \
                        not key.endswith(('.threshold', '.v0')):
                    raise ConversionStateError(
                        f'checkpoint {key} has shape {tuple(got.shape)}, this config\'s '
                        f'backbone {tuple(value.shape)}: it was converted from another '
                        'backbone')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
