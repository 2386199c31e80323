"""One small network per Caffe layer type (and per tricky option), converted and compared with
OpenCV's Caffe runtime, or with torch where OpenCV lacks the layer or ignores its parameters."""
import numpy as np
import pytest
import torch

from modelport.convert.caffe import LAYERS
from modelport.formats.caffe import caffe_pb2
from tests.caffe_writer import write_random_caffemodel
from tests.convert.caffe.helpers import assert_close_to_scale, onnx_outputs, opencv_outputs


def _net(body: str, shape=(2, 4, 7, 7)) -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n{body}\n'


def L(name, layer_type, bottom="data", top="out", params="", extra_bottoms=()):  # noqa: N802
    bottoms = "".join(f' bottom: "{b}"' for b in (bottom, *extra_bottoms))
    tops = "".join(f' top: "{t}"' for t in (top if isinstance(top, tuple) else (top,)))
    return f'layer {{ name: "{name}" type: "{layer_type}"{bottoms}{tops} {params} }}'


ABS = L("abs", "AbsVal", top="pos")
# (prototxt body, input shape, reference): reference "opencv" or a torch function of (x, blobs).
CASES = {
    "Convolution": (L("l", "Convolution", params="convolution_param { num_output: 6 kernel_size: 3 pad: 1 }"), None, "opencv"),
    "Convolution_group_dilation_hw": (L("l", "Convolution", params="convolution_param { num_output: 8 kernel_h: 3 kernel_w: 2 "
                                        "stride_h: 2 stride_w: 1 pad_h: 2 pad_w: 0 dilation: 2 group: 2 }"), None, "opencv"),
    "Convolution_no_bias": (L("l", "Convolution", params="convolution_param { num_output: 3 kernel_size: 1 bias_term: false }"), None, "opencv"),
    "Deconvolution": (L("l", "Deconvolution", params="convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2 }"), None, "opencv"),
    "Pooling_max_ceil": (L("l", "Pooling", params="pooling_param { pool: MAX kernel_size: 3 stride: 2 }"), (1, 2, 6, 6), "opencv"),
    "Pooling_max_clip_rule": (L("l", "Pooling", params="pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 }"), (1, 2, 5, 5), "opencv"),
    "Pooling_ave_border_divisor": (L("l", "Pooling", params="pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }"), (1, 2, 6, 6), "opencv"),
    "Pooling_ave_ceil_no_pad": (L("l", "Pooling", params="pooling_param { pool: AVE kernel_size: 3 stride: 2 }"), (1, 2, 8, 8), "opencv"),
    "Pooling_global": (L("l", "Pooling", params="pooling_param { pool: AVE global_pooling: true }"), None, "opencv"),
    "Pooling_global_max": (L("l", "Pooling", params="pooling_param { pool: MAX global_pooling: true }"), None, "opencv"),
    "Pooling_floor": (L("l", "Pooling", params="pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR }"), (1, 2, 8, 8),
                      lambda x, b: torch.nn.functional.max_pool2d(x, 3, 2)),
    "InnerProduct": (L("l", "InnerProduct", params="inner_product_param { num_output: 5 }"), None, "opencv"),
    "InnerProduct_axis2": (L("l", "InnerProduct", params="inner_product_param { num_output: 3 axis: 2 }"), None,
                           lambda x, b: torch.nn.functional.linear(x.flatten(2), b[0], b[1])),
    "InnerProduct_transpose": (L("l", "InnerProduct", params="inner_product_param { num_output: 5 transpose: true }"), None,
                               lambda x, b: x.flatten(1) @ b[0] + b[1]),
    "ReLU": (L("l", "ReLU"), None, "opencv"),
    "ReLU_negative_slope": (L("l", "ReLU", params="relu_param { negative_slope: 0.1 }"), None, "opencv"),
    "PReLU": (L("l", "PReLU"), None, "opencv"),
    "PReLU_channel_shared": (L("l", "PReLU", params="prelu_param { channel_shared: true }"), None, "opencv"),
    "Sigmoid": (L("l", "Sigmoid"), None, "opencv"),
    "TanH": (L("l", "TanH"), None, "opencv"),
    "ELU": (L("l", "ELU", params="elu_param { alpha: 0.5 }"), None, "opencv"),
    "AbsVal": (L("l", "AbsVal"), None, "opencv"),
    "Power": (ABS + "\n" + L("l", "Power", bottom="pos", params="power_param { power: 1.5 scale: 2 shift: 0.5 }"), None, "opencv"),
    "Exp": (L("l", "Exp", params="exp_param { base: 2 scale: 0.5 shift: 0.1 }"), None, "opencv"),
    "Log": (ABS + "\n" + L("l", "Log", bottom="pos"), None, "opencv"),
    # OpenCV ignores Log's base/scale/shift: torch is the reference for them.
    "Log_base_scale_shift": (ABS + "\n" + L("l", "Log", bottom="pos", params="log_param { base: 10 scale: 2 shift: 1 }"), None,
                             lambda x, b: torch.log10(1 + 2 * x.abs())),
    "BNLL": (L("l", "BNLL"), None, "opencv"),
    "Softmax": (L("l", "Softmax"), None, "opencv"),
    "Softmax_axis": (L("l", "Softmax", params="softmax_param { axis: 3 }"), None, "opencv"),
    "LRN_across_channels": (L("l", "LRN", params="lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 }"), None, "opencv"),
    # OpenCV ignores LRN's k (always 1): torch, whose formula is Caffe's, is the reference for it.
    "LRN_across_channels_k": (L("l", "LRN", params="lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 k: 2 }"), None,
                              lambda x, b: torch.nn.functional.local_response_norm(x, 5, 0.5, 0.75, 2.0)),
    "LRN_within_channel": (L("l", "LRN", params="lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }"), None, "opencv"),
    "Dropout": (L("c", "Convolution", top="c", params="convolution_param { num_output: 2 kernel_size: 1 }") + "\n"
                + L("l", "Dropout", bottom="c", top="c", params="dropout_param { dropout_ratio: 0.3 }"), None, "opencv"),
    "Concat": (ABS + "\n" + L("l", "Concat", extra_bottoms=("pos",), params="concat_param { axis: 1 }"), None, "opencv"),
    "Slice": (L("l", "Slice", top=("a", "b", "c"), params="slice_param { axis: 1 slice_point: 1 slice_point: 3 }"), None, "opencv"),
    "Split": (L("l", "Split", top=("s1", "s2")) + "\n" + L("r", "ReLU", bottom="s1", top="r") + "\n"
              + L("t", "TanH", bottom="s2", top="t"), None, "opencv"),
    "Eltwise_sum_coeff": (ABS + "\n" + L("l", "Eltwise", extra_bottoms=("pos",), params="eltwise_param { operation: SUM coeff: 0.5 coeff: -2 }"), None, "opencv"),
    "Eltwise_prod": (ABS + "\n" + L("l", "Eltwise", extra_bottoms=("pos",), params="eltwise_param { operation: PROD }"), None, "opencv"),
    "Eltwise_max": (ABS + "\n" + L("n", "Power", top="neg", params="power_param { scale: -1 }") + "\n"
                    + L("l", "Eltwise", bottom="neg", extra_bottoms=("data",), params="eltwise_param { operation: MAX }"), None, "opencv"),
    "Flatten": (L("l", "Flatten", params="flatten_param { axis: 2 }"), None, "opencv"),
    "Reshape": (L("l", "Reshape", params="reshape_param { shape { dim: 0 dim: -1 dim: 7 } }"), None, "opencv"),
    "Permute": (L("l", "Permute", params="permute_param { order: 0 order: 2 order: 3 order: 1 }"), None, "opencv"),
    "BatchNorm": (L("l", "BatchNorm", params="batch_norm_param { eps: 0.001 }"), None, "opencv"),
    "Scale_with_bias": (L("l", "Scale", params="scale_param { bias_term: true }"), None, "opencv"),
    "Scale_two_bottoms": (L("g", "Pooling", top="g", params="pooling_param { pool: AVE global_pooling: true }") + "\n"
                          + L("f", "Flatten", bottom="g", top="gf") + "\n"
                          + L("l", "Scale", extra_bottoms=("gf",), params="scale_param { axis: 0 }"), None, "opencv"),
    "Bias": (L("l", "Bias"), None, lambda x, b: x + b[0].reshape(1, -1, 1, 1)),
    "Crop": (L("p", "Pooling", top="small", params="pooling_param { pool: MAX kernel_size: 2 stride: 2 }") + "\n"
             + L("l", "Crop", extra_bottoms=("small",), params="crop_param { axis: 2 offset: 1 offset: 2 }"), None, "opencv"),
    "ArgMax": (L("l", "ArgMax", params="argmax_param { top_k: 3 }"), None,
               lambda x, b: torch.topk(x.flatten(1), 3).indices.float().unsqueeze(1)),
    "ArgMax_out_max_val": (L("l", "ArgMax", params="argmax_param { top_k: 2 out_max_val: true }"), None,
                           lambda x, b: torch.stack([torch.topk(x.flatten(1), 2).indices.float(), torch.topk(x.flatten(1), 2).values], 1)),
    "ArgMax_axis": (L("l", "ArgMax", params="argmax_param { axis: 1 }"), None, lambda x, b: x.argmax(1, keepdim=True).float()),
    "Clip": (L("l", "Clip", params="clip_param { min: -0.5 max: 0.7 }"), None, lambda x, b: x.clamp(-0.5, 0.7)),
}


def _blobs(caffemodel, layer_name):
    net = caffe_pb2.NetParameter()
    net.ParseFromString(caffemodel.read_bytes())
    layer = next(layer for layer in net.layer if layer.name == layer_name)
    return [torch.tensor(np.asarray(b.data, np.float32).reshape(tuple(b.shape.dim))) for b in layer.blobs]


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_matches_reference(cli, tmp_path, case):
    body, shape, reference = CASES[case]
    shape = shape or (2, 4, 7, 7)
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(_net(body, shape))
    weights = write_random_caffemodel(prototxt, tmp_path / "net.caffemodel", seed=3)
    dst = tmp_path / "net.onnx"
    result = cli("convert", prototxt, dst, "--weights", weights, "--no-check")
    assert result.code == 0, result.err
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    got = onnx_outputs(dst, {"data": x})
    if reference == "opencv":
        expected = opencv_outputs(prototxt, weights, {"data": x})
    else:
        expected = {"out": reference(torch.from_numpy(x), _blobs(weights, "l")).numpy()}
    assert set(expected) <= set(got), (sorted(expected), sorted(got))
    for name, value in expected.items():
        assert_close_to_scale(value, got[name], name, relative=1e-5)


def test_every_registered_layer_has_a_case():
    covered = {case.split("_")[0] for case in CASES} | {"Input"}
    assert set(LAYERS) <= covered, sorted(set(LAYERS) - covered)


def test_pool_size_rules():
    from modelport.convert.caffe.layers import caffe_pool_size
    assert caffe_pool_size(6, 3, 0, 2, ceil=True) == 3     # ceil: a last, partial window
    assert caffe_pool_size(6, 3, 0, 2, ceil=False) == 2
    assert caffe_pool_size(5, 2, 1, 2, ceil=True) == 3     # ceil gives 4; the clip rule drops the window in the pad
    assert caffe_pool_size(13, 3, 0, 2, ceil=True) == 6    # AlexNet's pool5
