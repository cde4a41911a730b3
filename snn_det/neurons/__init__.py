from .if_neuron import POTENTIAL_GRANULARITIES, IFNeuron, SignedIFNeuron, fused_available
from .quantizers import clip_floor, clip_round, rate_function, round_ste, signed_clip_round
from .surrogate import spike

__all__ = ['IFNeuron', 'SignedIFNeuron', 'POTENTIAL_GRANULARITIES', 'clip_floor',
           'clip_round', 'signed_clip_round', 'rate_function', 'round_ste', 'spike',
           'fused_available']
