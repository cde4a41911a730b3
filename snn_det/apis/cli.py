"""Command-line options shared by tools/convert.py, tools/test.py and benchmarks."""
import argparse

from ..conversion.config import CALIB_PRESETS, SHIFTS, ConversionConfig
from ..registry import NEURONS, registered
from ..conversion.thresholds import THRESHOLD_METHODS


def add_conversion_args(parser: argparse.ArgumentParser, default_T=(32,)) -> None:
    g = parser.add_argument_group('conversion (seed 001 / 003)')
    g.add_argument('--T', type=int, nargs='+', default=list(default_T),
                   help='numbers of time steps (one calibration per T)')
    g.add_argument('--threshold', choices=THRESHOLD_METHODS, default=None,
                   help='threshold choice (default: mmse, or the config\'s)')
    g.add_argument('--percentile', type=float, default=None, help='for --threshold percentile')
    g.add_argument('--channel-wise', dest='channel_wise', action='store_true', default=None,
                   help='one threshold per channel (default)')
    g.add_argument('--layer-wise', dest='channel_wise', action='store_false',
                   help='one threshold per layer')
    g.add_argument('--shift', choices=SHIFTS, default=None,
                   help="ClipRound shift: v(0)=theta/2 ('potential', default), bias += theta/2T "
                        "('bias') or none (ClipFloor)")
    g.add_argument('--relu-neuron', choices=sorted(registered(NEURONS)), default=None,
                   help="neuron at ReLU sites: 'if' (default; seeds 001-003) or 'signed' "
                        "(seed 003's signed neuron with negative slope 0: negative spikes "
                        "only take back earlier positive ones; beyond the seeds)")
    g.add_argument('--spiking-fpn', dest='spiking_fpn', action='store_true', default=None,
                   help='with --scope full: signed neurons on FPN\'s laterals and outputs, so '
                        'that every convolution after the first layer takes spikes '
                        '(single-stage detectors; docs/deployment.md)')
    g.add_argument('--calib', default=None,
                   help=f'calibration: {"|".join(CALIB_PRESETS)} or steps bias,potential,'
                        'weights,cc,fc')
    g.add_argument('--potential-granularity', choices=('layer', 'channel', 'element'),
                   default=None, help='initial potentials per channel (default; any input '
                   'size) or per element (fixed-size inputs only)')
    g.add_argument('--weight-iters', type=int, default=None,
                   help='weight calibration iterations per layer (paper: 5000)')
    g.add_argument('--fc-iters', type=int, default=None,
                   help='fine calibration (BPTT) iterations per layer')
    g.add_argument('--fc-loss', choices=('mse', 'kl'), default=None,
                   help='fine calibration loss: mse (detection, default) or kl '
                        '(classification, seed 003 Eq. 19)')
    g.add_argument('--fc-lr', type=float, default=None,
                   help='fine calibration Adam lr (seed 003: 1e-4 detection, 5e-4 classification)')
    g.add_argument('--fc-holdout', type=float, default=None,
                   help='fraction of the calibration images held out for fine calibration\'s '
                        'early stopping (default 0: stop on the loss of all of them)')
    g.add_argument('--calib-images', type=int, default=128, help='calibration images')
    g.add_argument('--calib-batch-size', type=int, default=8)
    g.add_argument('--chunk-size', type=int, default=None,
                   help='time steps simulated at once (bounds memory; default all T)')
    g.add_argument('--memory-budget', default='auto', metavar='SIZE',
                   help='memory for the whole run (model, data, calibration\'s time chunk '
                        'and cache): the time chunk and the cache\'s RAM are chosen to fit '
                        'it unless --chunk-size / --calib-cache-budget set them, and the '
                        'expected peak is printed before calibrating. auto (default): a '
                        'quarter of the machine\'s memory, at most 3/4 of what is free; a '
                        'size such as 8G; or none (the chunk fits the free memory, the cache '
                        'takes 4G)')
    g.add_argument('--calib-cache-budget', default=None, metavar='SIZE',
                   help='RAM for what calibration keeps per calibration batch (each batch\'s '
                        'ANN and SNN tensors at the layer reached, spike trains stored exactly '
                        'in bits; weight / fine calibration caches), e.g. 4G, 512M, 0, inf. '
                        'Beyond it they go to files under --calib-cache-dir, removed when the '
                        'conversion ends or fails (default: what --memory-budget leaves)')
    g.add_argument('--calib-current-limit', default='auto', metavar='SIZE',
                   help='convolution products kept between the two passes of layer-wise '
                        'calibration, so the second adds the corrected bias instead of '
                        'convolving again (only convolutions of >= 256 multiply-adds an '
                        'output; RAM within --calib-cache-budget, files beyond, freed as '
                        'used): auto (default: half the disk the cache may use: free '
                        'space under --calib-cache-dir plus its own files), a size such as '
                        '8G, or 0 (recompute them all)')
    g.add_argument('--calib-channels-last', dest='channels_last', action='store_true',
                   default=None,
                   help='calibrate in channels-last memory layout (images, convolution inputs, '
                        'cached spike trains): faster convolutions on CPUs (oneDNN); the '
                        'results are not bit-identical to the default layout (the '
                        'convolutions sum in another order, so a spike may move at a tie)')
    g.add_argument('--calib-cache-dir', default=None, metavar='DIR',
                   help='where calibration spills beyond its budget (default: the work dir)')
    g.add_argument('--scope', choices=('backbone', 'neck', 'full'), default=None,
                   help='what becomes spiking: the backbone (default; seed 001), backbone + '
                        'neck, or the whole detector up to its prediction convolutions '
                        '(full; seed 003; a two-stage detector: its RPN, then its RoI head\'s '
                        'shared FCs on the RPN\'s proposals, in two phases); default: the '
                        'config\'s')
    g.add_argument('--seed', type=int, default=0)


def conversion_overrides(args) -> dict:
    """Options given on the command line (None = keep the config's / the default)."""
    out = {}
    for key in ('threshold', 'percentile', 'channel_wise', 'shift', 'relu_neuron',
                'spiking_fpn', 'calib',
                'potential_granularity', 'weight_iters',
                'fc_iters', 'fc_loss', 'fc_lr', 'fc_holdout', 'channels_last'):
        v = getattr(args, key, None)
        if v is not None:
            out[key] = v
    out['seed'] = args.seed
    return out


def build_conversion(base: dict, args) -> ConversionConfig:
    d = dict(base or {})
    d.update(conversion_overrides(args))
    return ConversionConfig.from_dict(d)


def memory_limits(args):
    """``(memory_budget, cache_budget)`` in bytes from ``--memory-budget`` and
    ``--calib-cache-budget`` (``None``: unset); a bad size raises a one-line ValueError."""
    from ..runtime.cache import parse_bytes
    from ..runtime.memory import default_memory_budget
    raw = str(getattr(args, 'memory_budget', 'auto') or 'auto').strip().lower()
    if raw == 'auto':
        budget = default_memory_budget()
    elif raw in ('none', 'inf'):
        budget = None
    else:
        try:
            budget = parse_bytes(raw)
        except ValueError as e:
            raise ValueError(f'--memory-budget: {e}, or auto / none') from None
        if not budget:
            raise ValueError(f'--memory-budget must be above 0, got {raw!r}')
    raw_cache = getattr(args, 'calib_cache_budget', None)
    if raw_cache is None:        # chosen within the budget, or 4G with none
        return budget, (None if budget is not None else parse_bytes('4G'))
    try:
        cache = parse_bytes(raw_cache)
    except ValueError as e:
        raise ValueError(f'--calib-cache-budget: {e}') from None
    if cache is None and budget is not None:     # 'inf' given: no limit, not 'choose'
        cache = 1 << 62
    return budget, cache
