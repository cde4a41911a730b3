"""Export of converted spiking networks (NIR) and checks by independent runtimes."""
from .nir import INPUTS, NIRExportError, check_exportable, export_nir, stem_current, to_nir

__all__ = ['INPUTS', 'NIRExportError', 'check_exportable', 'export_nir', 'stem_current',
           'to_nir']
