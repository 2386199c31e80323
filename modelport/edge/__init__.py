"""Edge bundles: a model packaged for where it runs (TFLite for mobile apps, TF.js for browsers, ONNX
Runtime Mobile), every file checked in its own runtime against the source model.

``tflite.py``, ``tfjs.py`` and ``ort.py`` are the targets; ``source.py`` what they share about the
source model (planning it, its check data, labels, layouts, the agreement rule); ``bundle.py`` the
folder a bundle is written to (atomically) with its manifest and golden data; ``graph_model.py``
and ``tfjs_rewrites.py`` the TF.js graph-model format and the rewrites that make it fast.
"""
from __future__ import annotations

from .ort import export_ort
from .tfjs import WEIGHT_MODES, export_tfjs
from .tflite import MODES, export_tflite

__all__ = ["MODES", "WEIGHT_MODES", "export_ort", "export_tfjs", "export_tflite"]
