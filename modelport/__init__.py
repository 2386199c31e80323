"""modelport: convert models between frameworks and prove the numbers still match.

The public API is imported lazily so that ``import modelport`` loads no framework::

    import modelport
    session = modelport.open_model("model.onnx")
    result = modelport.convert("model.keras", "model.onnx")
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "open_model": ("modelport.formats", "open_model"),
    "detect": ("modelport.formats", "detect"),
    "convert": ("modelport.convert", None),  # the subpackage is callable: modelport.convert(src, dst)
    "validate": ("modelport.validate", None),  # callable too: modelport.validate(reference, candidate)
    "check_parity": ("modelport.validate.parity", "check_parity"),
    "compare_sessions": ("modelport.validate.parity", "compare_sessions"),
    "ParityReport": ("modelport.validate.compare", "ParityReport"),
    "TensorSpec": ("modelport.tensors", "TensorSpec"),
    "generate": ("modelport.formats.hf_onnx", "generate"),
    "export_tflite": ("modelport.edge.tflite", "export_tflite"),
    "export_tfjs": ("modelport.edge.tfjs", "export_tfjs"),
    "export_ort": ("modelport.edge.ort", "export_ort"),
    "export_executorch": ("modelport.edge.executorch", "export_executorch"),
    "export_openvino": ("modelport.edge.openvino", "export_openvino"),
    "export_web": ("modelport.edge.web", "export_web"),
    "serving": ("modelport.serve.api", "serving"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public API, resolved lazily, and the module's own dunders.
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})
