from .calib_data import build_calib_batches, calib_dataloader_cfg, collect_calib_batches
from .convert import (check_T_list, convert_model, converted_config, ensure_custom_imports,
                      is_spiking_cfg, save_converted, summarize, wrap_backbone_cfg)

__all__ = ['build_calib_batches', 'calib_dataloader_cfg', 'collect_calib_batches',
           'check_T_list', 'convert_model', 'converted_config', 'ensure_custom_imports',
           'is_spiking_cfg', 'save_converted', 'summarize', 'wrap_backbone_cfg']
