"""Per-site calibration steps (seed 001 LCP / ACP, seed 003 CC / FC) and what they keep.

Importing the package registers the steps in
:data:`snn_det.registry.CALIBRATION_STEPS` (see :mod:`.context`)."""
from . import bias, bptt, potential, weights  # noqa: F401  (register the steps)
from .context import CalibrationContext, calibration_step

__all__ = ['CalibrationContext', 'calibration_step']
