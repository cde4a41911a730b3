from .multi_t_test_loop import MultiTTestLoop
from .qc_init_hook import QCThresholdInitHook

__all__ = ['MultiTTestLoop', 'QCThresholdInitHook']
