"""Call graphs of the modules the converter supports, registered by the mmdet type
they convert (:data:`snn_det.registry.GRAPHS`): backbones (ResNet, Darknet), necks
(FPN, YOLOV3Neck) and heads (RetinaHead, YOLOV3Head); a two-stage detector's neck
and heads are one graph (:mod:`.two_stage`)."""
from typing import List, Optional

from torch import nn

from ...registry import GRAPHS
from ..errors import UnsupportedModuleError
from . import darknet, heads, necks, resnet  # noqa: F401  (register the graphs)
from .base import BackboneGraph, ConvUnit, Site


def registered_graphs(kind: str) -> List[str]:
    """Names of the module types with a registered graph of ``kind`` (``'backbone'``,
    or ``'part'``: necks and heads)."""
    return sorted(n for n, c in GRAPHS.module_dict.items()
                  if (c.kind == 'backbone') == (kind == 'backbone'))


def find_graph(module: nn.Module, kind: str) -> Optional[type]:
    """The graph class registered for ``module``: a backbone's (``kind='backbone'``)
    along its class hierarchy, so subclasses convert too; a neck's or head's
    (``'part'``) by its exact type, whose structure the graph was written for."""
    classes = type(module).__mro__ if kind == 'backbone' else (type(module),)
    for cls in classes:
        graph = GRAPHS.module_dict.get(cls.__name__)
        if graph is not None and (graph.kind == 'backbone') == (kind == 'backbone'):
            return graph
    return None


def build_graph(backbone: nn.Module) -> BackboneGraph:
    """Return the call graph of a supported backbone (a registered ``'backbone'`` graph)."""
    graph = find_graph(backbone, 'backbone')
    if graph is None:
        raise UnsupportedModuleError(
            'backbone', backbone,
            f"supported backbones are {', '.join(registered_graphs('backbone'))}")
    return graph(backbone)


__all__ = ['BackboneGraph', 'ConvUnit', 'Site', 'build_graph', 'find_graph',
           'registered_graphs']
