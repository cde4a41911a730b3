"""Storage and memory of a conversion run: what calibration keeps between its passes and
what inference stashes, where it lives (RAM up to a budget, files beyond) and how much
memory a run will need.

* :mod:`.cache` -- the calibration cache (RAM up to a budget, spill files beyond);
* :mod:`.spike_codes` -- spike trains stored exactly in bits;
* :mod:`.states` -- a segment's ANN / SNN input stored between passes, cached images;
* :mod:`.currents` -- convolution products kept between a site's two passes;
* :mod:`.memory` -- the memory estimate made before calibrating, the time chunk chosen.

Calibration algorithms (:mod:`snn_det.calibration`) and inference
(:mod:`snn_det.models`) both use it; it imports neither.
"""
