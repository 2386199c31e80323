"""Keys of the ONNX ``metadata_props`` that modelport writes when converting and reads back
(validate, info, serve): one place, so that writer and reader cannot drift apart."""
from __future__ import annotations

# {Keras layer name: ONNX tensor holding its output}, JSON; written by keras -> onnx for --localize.
KERAS_LAYER_OUTPUTS = "modelport.keras.layer_outputs"
# Caffe input preprocessing (mean, scale, channel order), JSON; and whether it is baked into the graph.
CAFFE_PREPROCESSING = "modelport.caffe.preprocessing"
CAFFE_PREPROCESSING_BAKED = "modelport.caffe.preprocessing_baked"
# {input name: {"low", "high", "why"}}, JSON: the values each input expects, carried from the source
# model (a Keras Rescaling layer, TFLite normalization, --input-range) so that later checks feed them.
INPUT_RANGES = "modelport.input_ranges"
# Node metadata written by torch's dynamo exporter: the module scopes a node was traced in.
TORCH_NAME_SCOPES = "pkg.torch.onnx.name_scopes"

# A SavedModel written by onnx -> savedmodel records, in assets/, the TF tensor computing each ONNX
# value (and the axis order it is kept in) so that validate --localize pairs the two models.
SAVEDMODEL_ONNX_TENSORS = "modelport_onnx_tensors.json"
