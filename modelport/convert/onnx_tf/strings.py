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


@onnx_op("TfIdfVectorizer", since=9)
def convert_tfidf_vectorizer(ctx: NodeContext):
    """ONNX TfIdfVectorizer: per row, how often each pool n-gram occurs (tokens ``d`` apart, for
    every d up to max_skip_count + 1; 1-grams once), weighted as TF, IDF or TFIDF."""
    import numpy as np
    tf = _tf()
    x = ctx.inputs[0]
    vector = len(x.shape) <= 1
    rows = tf.reshape(x, [1, -1]) if vector else x
    strings = ctx.attr("pool_strings")
    pool = list(strings) if strings is not None else [int(v) for v in ctx.attr("pool_int64s")]
    starts = list(ctx.attr("ngram_counts")) + [len(pool)]
    indexes = list(ctx.attr("ngram_indexes"))
    low, high = ctx.attr("min_gram_length"), ctx.attr("max_gram_length")
    skips = ctx.attr("max_skip_count", 0)
    width = max(indexes) + 1
    length = tf.shape(rows)[1]
    counts, columns = [], []
    item = 0  # the pool is laid out as all 1-grams, then all 2-grams, ...
    for n, (begin, end) in enumerate(zip(starts[:-1], starts[1:]), start=1):
        grams = np.asarray(pool[begin:end], dtype=object if strings is not None else np.int64).reshape(-1, n)
        ids = list(range(item, item + len(grams)))
        item += len(grams)
        if not low <= n <= high or not len(grams):
            continue
        total = 0
        for distance in range(1, (1 if n == 1 else skips + 1) + 1):
            span = tf.maximum(length - (n - 1) * distance, 0)  # the starts that fit the row
            match = None
            for k in range(n):
                window = rows[:, k * distance:k * distance + span]
                hit = tf.equal(window[:, :, None], tf.constant(grams[:, k].tolist(), dtype=rows.dtype)[None, None, :])
                match = hit if match is None else match & hit
            total = total + tf.reduce_sum(tf.cast(match, tf.float32), axis=1)
        counts.append(total)
        columns.extend(indexes[i] for i in ids)
    if not counts:
        result = tf.zeros(tf.stack([tf.shape(rows)[0], width]), tf.float32)
    else:
        found = tf.concat(counts, axis=1)  # [rows, pool items of the lengths counted]
        mode = ctx.attr("mode")
        weights = ctx.attr("weights")
        if mode == "IDF":
            found = tf.minimum(found, 1.0)
        if mode in ("IDF", "TFIDF") and weights is not None:
            found = found * tf.constant(_counted_weights(weights, starts, low, high), tf.float32)[None, :]
        result = tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(found), columns, width))
    return result[0] if vector else result


def _counted_weights(weights, starts, low: int, high: int) -> list[float]:
    """The weights of the pool items whose n-gram length is counted, in pool order."""
    out, item = [], 0
    for n, (begin, end) in enumerate(zip(starts[:-1], starts[1:]), start=1):
        size = (end - begin) // n
        if low <= n <= high:
            out.extend(weights[item:item + size])
        item += size
    return out
