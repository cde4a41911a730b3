"""What every calibration step receives, and how a step is registered.

A step (seed 001's bias / potential / weight calibration, seed 003's coarse and fine
calibration, or one of your own) is one function of a :class:`CalibrationContext`,
registered in :data:`snn_det.registry.CALIBRATION_STEPS` with
:func:`calibration_step`.  :func:`snn_det.pipeline.calibrate` runs the steps named in
``ConversionConfig.calib`` site by site, from the first site to the last, in their
registered ``order``.
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

from ..registry import CALIBRATION_STEPS


@dataclass
class CalibrationContext:
    """One site's calibration: the spiking net being calibrated and what it is
    calibrated towards.

    ``graph``: the backbone's call graph (ANN side); ``net``: the
    :class:`~snn_det.conversion.spiking_net.SpikingNet` of ``T`` steps;
    ``frontiers``: one :class:`~snn_det.calibration.frontier.Frontier` per calibration
    batch, moved to this site's segment; ``site``: the site's name; ``chunk_size``:
    time steps simulated at once; ``acts``: QC / QCFS site activations of a Stage-I
    model (the targets), or ``None``; ``cache``: the
    :class:`~snn_det.runtime.cache.CalibrationCache` for what a step keeps per
    batch; ``cfg``: the :class:`~snn_det.conversion.config.ConversionConfig`."""
    graph: Any
    net: Any
    frontiers: List[Any]
    site: str
    T: int
    chunk_size: Optional[int]
    acts: Optional[dict]
    cache: Any
    cfg: Any


def calibration_step(name: str, order: int, observed_first: bool = False) -> Callable:
    """Register ``fn(ctx: CalibrationContext) -> None`` as calibration step ``name``.

    ``order``: steps of one conversion run in increasing order at each site;
    ``observed_first``: the step starts from the site's error ``x - s_bar``, which the
    calibration frontiers then observe on their way to the site (one pass instead of
    two) when it is the first step."""
    def register(fn: Callable) -> Callable:
        fn.step_name, fn.order, fn.observed_first = name, int(order), bool(observed_first)
        CALIBRATION_STEPS.register_module(name=name, module=fn)
        return fn
    return register
