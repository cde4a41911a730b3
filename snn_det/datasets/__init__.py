"""Datasets of snn_det: the deterministic generated shape data and the NEON tree crowns
(real aerial images from the deepforest wheel); numpy + Pillow only."""
from .synthetic import (SYNTH_CLASSES, SYNTH_VOC_YEAR, build_synthetic_data, dataset_checksum,
                        generate_classification_dataset, generate_detection_dataset)
from .neon_trees import NEON_TREES_CLASSES, NeonTreesError, build_neon_trees_data

__all__ = ['SYNTH_CLASSES', 'SYNTH_VOC_YEAR', 'build_synthetic_data', 'dataset_checksum',
           'generate_classification_dataset', 'generate_detection_dataset',
           'NEON_TREES_CLASSES', 'NeonTreesError', 'build_neon_trees_data']
