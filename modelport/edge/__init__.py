"""Edge bundles: a model packaged for where it runs (TFLite for mobile apps), every file checked in
its own runtime against the source model.

``tflite.py`` holds the quantization modes and their acceptance rules, ``bundle.py`` the folder a
bundle is written to (atomically) with its manifest and golden data.
"""
from __future__ import annotations

from .tflite import MODES, export_tflite

__all__ = ["MODES", "export_tflite"]
