"""SavedModel and Keras -> TFLite (fp32) with TensorFlow's own converter; quantized TFLite belongs
to ``modelport edge tflite``. The TFLite hop is checked in LiteRT like every other hop."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

from .._console import captured_output
from ..errors import ConversionError, first_line
from ..formats._tf import import_tf, keras_tflite_converter
from .registry import ConvertOptions, converter


def refusal(exc: Exception, what: str, hop: str) -> ConversionError:
    """TFLiteConverter's failure as a ConversionError naming the TF ops without a TFLite builtin,
    with what to do (for loops: fixed sizes, or a SavedModel)."""
    ops = sorted(set(re.findall(r"'(tf\.\w+)' op", str(exc))))
    detail = f"TensorFlow ops without a TFLite builtin: {', '.join(ops)}" if ops else first_line(exc)
    hint = "TFLite builtins lack an op of this model; run with --debug for the converter's log"
    if any(op.startswith("tf.TensorList") for op in ops):  # a loop TFLite could only lower with fixed shapes
        hint = ("the model loops (a recurrent layer, an ONNX Loop or Scan) in a way TFLite's builtins cannot "
                "hold; fixed sizes (--fixed-batch, --input-shape with a fixed sequence length) let ONNX "
                "RNN/GRU/LSTM layers unroll; a SavedModel (--to savedmodel) runs it as it is")
    return ConversionError(f"{what}: {detail}", hop=hop, hint=hint)


def _convert(make_converter, dst: Path, source: str) -> Path:
    tf = import_tf()
    try:
        with captured_output() as log, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converter_ = make_converter(tf)
            converter_.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex: LiteRT must run it
            flatbuffer = converter_.convert()
    except Exception as exc:
        raise refusal(exc, f"the TFLite converter refused {source}", hop="->tflite") from exc
    del log
    dst.write_bytes(flatbuffer)
    return dst


@converter("savedmodel", "tflite", "tf.lite.TFLiteConverter from the serving signature")
def savedmodel_to_tflite(session, dst: Path, options: ConvertOptions) -> Path:
    """TensorFlow SavedModel -> TFLite flatbuffer (fp32, builtin ops)."""
    return _convert(lambda tf: tf.lite.TFLiteConverter.from_saved_model(
        str(session.path), signature_keys=[session.signature_name]), dst, f"SavedModel {session.path.name!r}")


@converter("keras", "tflite", "tf.lite.TFLiteConverter from the Keras model")
def keras_to_tflite(session, dst: Path, options: ConvertOptions) -> Path:
    """Keras model -> TFLite flatbuffer (fp32, builtin ops)."""
    return _convert(lambda tf: keras_tflite_converter(tf, session), dst, "the Keras model")
