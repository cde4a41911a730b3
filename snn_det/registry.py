"""Registries of snn-det's extension points, in MMEngine's style.

* :data:`NEURONS`: the spiking neuron put on an activation site, chosen by name
  (``relu_neuron='if' | 'signed'`` for ReLU sites; Leaky-ReLU sites take ``'signed'``).
  An entry is a builder ``build(site, channel_wise, rounding) -> nn.Module`` that
  reads ``site.channels`` (and ``site.negative_slope`` for signed sites).
* :data:`CALIBRATION_STEPS`: the per-site calibration steps (``calib=['bias', ...]``),
  each one function ``step(ctx) -> None`` of a
  :class:`~snn_det.calibration.context.CalibrationContext`, registered with
  :func:`~snn_det.calibration.context.calibration_step` (its order and whether it
  starts from the site's observed error).

* :data:`GRAPHS`: the call graphs that say how a backbone, neck or head runs as a
  spiking network, registered under the name of the mmdet module type they convert
  (``'ResNet'``, ``'Darknet'``, ``'FPN'``, ``'RetinaHead'``, ...); a graph's ``kind``
  is ``'backbone'`` (matched along the module's class hierarchy, so subclasses
  convert too) or ``'neck'`` / ``'head'`` (matched by exact type).

* :data:`NIR_GRAPHS` / :data:`NIR_NODES`: NIR export (:mod:`snn_det.export.nir`): a graph's
  exporter, registered under the graph's :data:`GRAPHS` name (``'ResNet'``), writes its
  nodes and edges; a neuron's node builder, registered under the neuron's class name
  (``'IFNeuron'``), makes the NIR node of one site.  What has no entry is refused.

* :data:`TARGET_CHECKS`: the checks a benchmark config's ``targets`` name
  (``check=dict(type='ratio_at', ...)``, :mod:`snn_det.analysis.target_checks` and
  :mod:`snn_det.analysis.reference_checks`).

Mmdet's own ``MODELS`` registry holds the registered models (``SpikingBackbone``,
the spiking detectors and classifier).

Modules register themselves when imported; each registry imports its package on
first use (``locations``), so a name given in a config is found without the caller
importing anything first.  A new entry is one file with a decorator, e.g.::

    from snn_det.registry import NEURONS

    @NEURONS.register_module(name='my_if')
    def build_my_if(site, channel_wise=True, rounding=True):
        return MyIFNeuron(site.channels, channel_wise)
"""
from typing import List

from mmengine.registry import Registry

NEURONS = Registry('spiking neuron', scope='snn_det', locations=['snn_det.neurons'])
CALIBRATION_STEPS = Registry('calibration step', scope='snn_det',
                             locations=['snn_det.calibration'])
GRAPHS = Registry('spiking graph', scope='snn_det', locations=['snn_det.conversion.graphs'])
NIR_GRAPHS = Registry('NIR export of a graph', scope='snn_det',
                      locations=['snn_det.export.nir'])
NIR_NODES = Registry('NIR node of a neuron', scope='snn_det', locations=['snn_det.export.nir'])
TARGET_CHECKS = Registry('target check', scope='snn_det',
                         locations=['snn_det.analysis.target_checks',
                                    'snn_det.analysis.reference_checks'])


def registered(registry: Registry) -> List[str]:
    """Names in ``registry`` (after importing its locations)."""
    registry.import_from_location()
    return list(registry.module_dict)


def get_registered(registry: Registry, name: str, what: str):
    """``registry``'s entry ``name``, or a one-line error naming the known ones."""
    registry.import_from_location()
    entry = registry.module_dict.get(name)
    if entry is None:
        raise KeyError(f"unknown {what} '{name}'; registered: {sorted(registry.module_dict)}")
    return entry
