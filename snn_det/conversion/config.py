"""Options of one conversion, as given in a config or on the command line."""
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional

from ..neurons.if_neuron import POTENTIAL_GRANULARITIES
from ..registry import CALIBRATION_STEPS, NEURONS, get_registered, registered
from .thresholds import THRESHOLD_METHODS

SHIFTS = ('potential', 'bias', 'none')
#: neurons at ReLU sites (registered in snn_det.registry.NEURONS): the IF neuron of
#: seeds 001-003, or the signed neuron of seed 003 Eq. 22 in its ReLU limit (negative
#: slope 0; beyond the seeds, see SignedIFNeuron)
RELU_NEURONS = ('if', 'signed')


def calib_steps() -> List[str]:
    """The registered calibration steps, in the order they are applied per site
    (seed 001: bias, potential, weights; seed 003: cc, fc)."""
    return sorted(registered(CALIBRATION_STEPS), key=lambda s: CALIBRATION_STEPS.get(s).order)


def observed_first(step: str) -> bool:
    """Does ``step`` start from the site's error ``x - s_bar``?  Then the calibration
    frontier observes it on its way to the site (and keeps the site's products)."""
    return get_registered(CALIBRATION_STEPS, step, 'calibration step').observed_first


#: names for combinations (seed 001: LCP, ACP; seed 003: CC, FC)
CALIB_PRESETS = {
    'none': [], 'baseline': [],
    'lcp': ['bias'],
    'acp': ['potential', 'weights'],
    'lcp+acp': ['bias', 'potential', 'weights'],
    'cc': ['cc'], 'fc': ['fc'], 'cc+fc': ['cc', 'fc'],
}


def parse_calib(spec) -> List[str]:
    """``'lcp'``, ``'acp'``, ``'bias,weights'``, ``['bias']`` ... -> ordered steps."""
    if spec is None:
        return []
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    steps = []
    for item in items:
        for part in str(item).replace(',', ' ').split():
            part = part.lower()
            names = CALIB_PRESETS.get(part, [part])
            known = calib_steps()
            for name in names:
                if name not in known:
                    raise ValueError(f"unknown calibration '{part}'; choose from "
                                     f"{sorted(CALIB_PRESETS)} or steps {known}")
                if name not in steps:
                    steps.append(name)
    return [s for s in calib_steps() if s in steps]


@dataclass
class ConversionConfig:
    """How thresholds are chosen and which calibrations run (seed 001 / 003)."""
    threshold: str = 'mmse'             # max | percentile | mmse
    channel_wise: bool = True
    percentile: float = 99.99
    grid: int = 100                     # N of Algo. 1
    shift: str = 'potential'            # ClipRound shift: v(0)=theta/2, bias+theta/2T, none
    relu_neuron: str = 'if'             # ReLU sites: IF neuron, or signed (ReLU limit of Eq. 22)
    # scope full: signed neurons on FPN's laterals and outputs, so that no convolution
    # after the first layer takes analog input (conversion/graphs/necks.py)
    spiking_fpn: bool = False
    calib: List[str] = field(default_factory=list)
    potential_granularity: str = 'channel'   # initial potential: layer | channel | element
    # weight calibration (seed 001 Sec. 5.1)
    weight_iters: int = 5000
    weight_lr: float = 1e-5
    weight_momentum: float = 0.9
    weight_batch: int = 32
    # fine calibration with BPTT (seed 003 Sec. V-B)
    fc_iters: int = 200
    fc_lr: float = 1e-4
    fc_alpha: float = 1.0               # surrogate width, in units of the threshold
    fc_patience: int = 20
    fc_loss: str = 'mse'                # mse (detection) | kl (classification)
    fc_batch: Optional[int] = None      # images per BPTT step (default: a whole cached batch)
    fc_holdout: float = 0.0             # fraction of images held out for early stopping
    max_samples: int = 1 << 22          # activation samples kept per site (percentile/MMSE)
    seed: int = 0
    # calibrate with the images, so every convolution input and boundary, in channels-last
    # memory layout: faster convolutions on CPUs; not bit-identical to the default layout
    channels_last: bool = False

    def __post_init__(self):
        self.calib = parse_calib(self.calib)
        if self.threshold not in THRESHOLD_METHODS:
            raise ValueError(f"threshold must be one of {THRESHOLD_METHODS}, got '{self.threshold}'")
        if self.shift not in SHIFTS:
            raise ValueError(f"shift must be one of {SHIFTS}, got '{self.shift}'")
        if self.relu_neuron not in registered(NEURONS):
            raise ValueError(f'relu_neuron must be one of {sorted(registered(NEURONS))}, '
                             f"got '{self.relu_neuron}'")
        if self.potential_granularity not in POTENTIAL_GRANULARITIES:
            raise ValueError(f'potential_granularity must be one of {POTENTIAL_GRANULARITIES}')
        if not 0 < self.percentile <= 100:
            raise ValueError(f'percentile must be in (0, 100], got {self.percentile}')
        if not 0 <= self.fc_holdout < 1:
            raise ValueError(f'fc_holdout must be in [0, 1), got {self.fc_holdout}')
        if self.fc_loss not in ('mse', 'kl'):
            raise ValueError(f"fc_loss must be 'mse' or 'kl', got '{self.fc_loss}'")

    @property
    def rounding(self) -> bool:
        return self.shift != 'none'

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> 'ConversionConfig':
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(f'unknown conversion option(s) {unknown}; known: {sorted(known)}')
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        gran = 'channel' if self.channel_wise else 'layer'
        calib = '+'.join(self.calib) or 'none'
        neuron = '' if self.relu_neuron == 'if' else f', relu_neuron={self.relu_neuron}'
        layout = ' (channels-last)' if self.channels_last and self.calib else ''
        fpn = ', spiking FPN' if self.spiking_fpn else ''
        return (f'threshold={self.threshold}/{gran}, shift={self.shift}{neuron}{fpn}, '
                f'calib={calib}{layout}')
