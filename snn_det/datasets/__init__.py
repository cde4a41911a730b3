"""Datasets of snn_det: the deterministic generated shape data (numpy + Pillow only)."""
from .synthetic import (SYNTH_CLASSES, SYNTH_VOC_YEAR, build_synthetic_data, dataset_checksum,
                        generate_classification_dataset, generate_detection_dataset)

__all__ = ['SYNTH_CLASSES', 'SYNTH_VOC_YEAR', 'build_synthetic_data', 'dataset_checksum',
           'generate_classification_dataset', 'generate_detection_dataset']
