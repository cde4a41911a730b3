from .qc_init_hook import QCThresholdInitHook

__all__ = ['QCThresholdInitHook']
