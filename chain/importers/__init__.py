"""Importers: turn other frameworks' pretrained files into chain checkpoints."""

from chain.importers.tflite import import_tflite, load_deeplab_mnv2, save_imported

__all__ = ["import_tflite", "load_deeplab_mnv2", "save_imported"]
