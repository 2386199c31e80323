"""ONNX -> OpenVINO IR with OpenVINO's own frontend (``openvino.convert_model``), saved as
``NAME.xml`` + ``NAME.bin``.

``openvino.save_model`` stores weights in half precision unless told not to; modelport writes fp32
weights (what the source holds) unless ``--dtype fp16`` asks for the compressed form, which is then
judged by the fp16 rule. The input ranges the ONNX model records go into the IR's runtime info.
"""
from __future__ import annotations

from pathlib import Path

from .._console import captured_output
from ..errors import ConversionError, first_line
from .registry import ConvertOptions, EdgeOutput, converter

@converter("onnx", "openvino", "openvino.convert_model (OpenVINO's ONNX frontend), weights kept in fp32")
def onnx_to_openvino(session, dst: Path, options: ConvertOptions) -> EdgeOutput:
    import openvino as ov
    from ..formats.openvino import weights_of, write_ranges
    from ..formats.value_ranges import ranges_of
    compress = (options.dtype or "fp32") == "fp16"
    try:
        with captured_output():
            model = ov.convert_model(str(session.path))
            write_ranges(model, ranges_of(session.inputs))
            ov.save_model(model, str(dst), compress_to_fp16=compress)
    except Exception as exc:
        raise ConversionError(f"OpenVINO's ONNX frontend refused the model: {first_line(exc)}", hop="onnx->openvino",
                              hint="the op it names has no OpenVINO conversion; check OpenVINO's supported ONNX "
                                   "operations, or rewrite the model around it") from exc
    out = EdgeOutput(exporter=f"openvino {ov.get_version().split('-')[0]}",
                     note="weights fp16 (compressed), computed in f32" if compress else "weights fp32")
    out.companions.append(weights_of(dst))
    return out

