"""ONNX's string ops on TF string tensors: StringConcat, RegexFullMatch (both RE2), StringSplit
and StringNormalizer."""
from __future__ import annotations

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf



@onnx_op("StringConcat", since=20)
def convert_string_concat(ctx: NodeContext):
    """ONNX StringConcat (numpy broadcasting)."""
    return _tf().math.add(ctx.inputs[0], ctx.inputs[1])


@onnx_op("RegexFullMatch", since=20)
def convert_regex_full_match(ctx: NodeContext):
    """ONNX RegexFullMatch: whether each string matches the RE2 pattern entirely."""
    return _tf().strings.regex_full_match(ctx.inputs[0], ctx.attr("pattern"))


@onnx_op("StringSplit", since=20)
def convert_string_split(ctx: NodeContext):
    """ONNX StringSplit: substrings padded with "" to the longest split, and their counts. No
    delimiter splits on runs of whitespace."""
    tf = _tf()
    x = ctx.inputs[0]
    delimiter = ctx.attr("delimiter") or None
    maxsplit = ctx.attr("maxsplit")
    parts = tf.strings.split(x, sep=delimiter, maxsplit=-1 if maxsplit is None else maxsplit)
    counts = tf.reshape(parts.nested_row_lengths()[-1], tf.shape(x))  # innermost lengths, row-major
    return [parts.to_tensor(default_value=""), tf.cast(counts, tf.int64)]


@onnx_op("StringNormalizer", since=10)
def convert_string_normalizer(ctx: NodeContext):
    """ONNX StringNormalizer: drop stopwords (case-sensitive or not), change case; an all-dropped
    input leaves one empty string."""
    tf = _tf()
    x = ctx.inputs[0]
    action = ctx.attr("case_change_action", "NONE")
    stopwords = list(ctx.attr("stopwords") or [])
    sensitive = ctx.attr("is_case_sensitive", 0)
    flat = tf.reshape(x, [-1])
    if stopwords:
        words = flat if sensitive else tf.strings.lower(flat)
        stops = tf.constant(stopwords if sensitive else [w.lower() for w in stopwords])
        keep = tf.logical_not(tf.reduce_any(tf.equal(words[:, None], stops[None, :]), axis=1))
        flat = tf.boolean_mask(flat, keep)
    if action == "LOWER":
        flat = tf.strings.lower(flat, encoding="utf-8")
    elif action == "UPPER":
        flat = tf.strings.upper(flat, encoding="utf-8")
    flat = tf.cond(tf.size(flat) > 0, lambda: flat, lambda: tf.constant([""]))
    return flat if len(x.shape) == 1 else tf.reshape(flat, [1, -1])


@onnx_op("LabelEncoder", since=2, domain="ai.onnx.ml")
def convert_label_encoder(ctx: NodeContext):
    """ONNX-ML LabelEncoder: map each key (string, int64, float or tensor keys) to its value, else
    the default; a comparison against every key, so small vocabularies need no lookup table."""
    from onnx import numpy_helper
    import numpy as np
    tf = _tf()
    x = ctx.inputs[0]

    def first(*names):
        for name in names:
            value = ctx.attr(name)
            if value is not None:
                return numpy_helper.to_array(value) if hasattr(value, "data_type") else value
        return None

    keys = first("keys_strings", "keys_int64s", "keys_floats", "keys_tensor")
    values = first("values_strings", "values_int64s", "values_floats", "values_tensor")
    if ctx.attr("values_strings") is not None:
        values, default = list(values), ctx.attr("default_string", "")
    elif ctx.attr("values_int64s") is not None:
        values, default = np.asarray(values, np.int64), ctx.attr("default_int64", -1)
    elif ctx.attr("values_floats") is not None:
        values, default = np.asarray(values, np.float32), ctx.attr("default_float", -0.0)
    else:
        default = numpy_helper.to_array(ctx.attr("default_tensor")).reshape(-1)[0]
    if ctx.attr("keys_strings") is not None:
        keys = list(keys)
    keys = tf.constant(keys, dtype=x.dtype)
    values = tf.constant(values)
    hit = tf.equal(x[..., None], keys)
    picked = tf.gather(values, tf.argmax(tf.cast(hit, tf.int32), axis=-1))
    return tf.where(tf.reduce_any(hit, axis=-1), picked, tf.cast(tf.constant(default), values.dtype))
