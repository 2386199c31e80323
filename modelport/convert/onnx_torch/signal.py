"""ONNX's signal ops: DFT (forward, inverse, one-sided, any axis, padded or cut to a length) and STFT
on the [..., 1 | 2] real / complex representation ONNX uses (torch.fft), MelWeightMatrix, and the
Hann, Hamming and Blackman windows."""
from __future__ import annotations

import math
from typing import Optional

import torch

from .dtypes import torch_dtype
from .graph import NodeContext, onnx_op


def dft(x: torch.Tensor, length: Optional[torch.Tensor], axis, inverse: bool, onesided: bool) -> torch.Tensor:
    rank = x.dim()
    axis = int(axis.reshape(-1)[0]) if isinstance(axis, torch.Tensor) else axis
    axis = axis % rank
    size = x.shape[axis]
    count = int(length.reshape(-1)[0]) if length is not None else (2 * (size - 1) if inverse and onesided else size)
    # Forward transforms and one-sided inverses in double precision (numpy's, the reference's); the
    # complex inverse in single precision, which is what ONNX's expected values for it carry.
    wide = torch.float32 if inverse and not onesided else torch.float64
    real = x[..., 0].to(wide)
    imag = x[..., 1].to(wide) if x.shape[-1] == 2 else torch.zeros_like(real)
    signal = torch.complex(real, imag)
    if inverse and onesided:
        result = torch.fft.irfft(signal, n=count, dim=axis)
        return result.unsqueeze(-1).to(x.dtype)
    result = torch.fft.ifft(signal, n=count, dim=axis) if inverse else torch.fft.fft(signal, n=count, dim=axis)
    if onesided and not inverse:
        result = result.narrow(axis, 0, count // 2 + 1)
    return torch.stack([result.real, result.imag], -1).to(x.dtype)


@onnx_op("DFT", since=17)
def dft_op(ctx: NodeContext, x, length=None, axis=None):
    if ctx.opset < 20:
        axis = ctx.attr("axis", 1)
    elif axis is None:
        axis = -2
    return ctx.call(dft, x, length, axis, bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0)))


def stft(x: torch.Tensor, step: torch.Tensor, window: Optional[torch.Tensor], length: Optional[torch.Tensor],
         onesided: bool) -> torch.Tensor:
    """Frames of frame_length every frame_step samples, times the window, each transformed;
    [batch, frames, bins, 2]."""
    size = int(length.reshape(-1)[0]) if length is not None else window.shape[0]
    signal = x[..., 0].to(torch.float64)
    if x.shape[-1] == 2:
        signal = torch.complex(signal, x[..., 1].to(torch.float64))
    frames = signal.unfold(1, size, int(step.reshape(-1)[0]))  # [batch, frames, size]
    if window is not None:
        frames = frames * window.to(torch.float64)
    if frames.is_complex():
        result = torch.fft.fft(frames)
    elif onesided:
        result = torch.fft.rfft(frames, n=size)
    else:
        result = torch.fft.fft(frames.to(torch.complex128))
    return torch.stack([result.real, result.imag], -1).to(x.dtype)


@onnx_op("STFT", since=17)
def stft_op(ctx: NodeContext, x, step, window=None, length=None):
    if length is None and window is None:
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError("STFT without a window or frame_length", ctx.opset, where=f"node {ctx.name!r}")
    return ctx.call(stft, x, step, window, length, bool(ctx.attr("onesided", 1)))


def mel_weight_matrix(mels: torch.Tensor, dft_length: torch.Tensor, rate: torch.Tensor, low: torch.Tensor,
                      high: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[dft_length // 2 + 1, num_mel_bins] triangular filters between mel-spaced FFT bins (bin
    edges rounded down, as ONNX's reference computes them)."""
    mels, dft_length, rate = int(mels), int(dft_length), int(rate)
    ln10 = math.log(10)
    low_mel = float(2595 * torch.log1p(low.to(torch.float32) / 700) / ln10)
    high_mel = float(2595 * torch.log1p(high.to(torch.float32) / 700) / ln10)
    points = torch.arange(mels + 2, dtype=torch.float64)
    mel = points * ((high_mel - low_mel) / (mels + 2)) + low_mel
    hertz = 700 * torch.expm1(mel / 2595 * ln10)
    edges = torch.floor((dft_length + 1) * hertz / rate).to(torch.int64)
    left, center, right = edges[:-2].reshape(1, -1), edges[1:-1].reshape(1, -1), edges[2:].reshape(1, -1)
    j = torch.arange(dft_length // 2 + 1).reshape(-1, 1)

    def ratio(num, den):
        return num.to(torch.float64) / torch.clamp(den, min=1).to(torch.float64)
    # Rising from left to center (a single 1 where they coincide), then falling from center to
    # right, which wins where both apply (the reference writes it second).
    rising = torch.where(center == left, (j == center).to(torch.float64),
                         torch.where((j >= left) & (j <= center), ratio(j - left, center - left),
                                     torch.zeros((), dtype=torch.float64)))
    falling_here = (right > center) & (j >= center) & (j < right)
    return torch.where(falling_here, ratio(right - j, right - center), rising).to(dtype)


@onnx_op("MelWeightMatrix", since=17)
def mel_weight_matrix_op(ctx: NodeContext, mels, dft_length, rate, low, high):
    return ctx.call(mel_weight_matrix, mels, dft_length, rate, low, high, torch_dtype(ctx.attr("output_datatype", 1)))


def window(size: torch.Tensor, kind: str, periodic: bool, dtype: torch.dtype) -> torch.Tensor:
    count = int(size.reshape(-1)[0])
    span = count if periodic else count - 1
    n = torch.arange(count, dtype=torch.float64)
    if kind == "HannWindow":
        values = torch.sin(math.pi * n / span) ** 2
    elif kind == "HammingWindow":
        values = 25.0 / 46.0 - (21.0 / 46.0) * torch.cos(2 * math.pi * n / span)
    else:
        values = 0.42 - 0.5 * torch.cos(2 * math.pi * n / span) + 0.08 * torch.cos(4 * math.pi * n / span)
    return values.to(dtype)


@onnx_op("HannWindow", "HammingWindow", "BlackmanWindow", since=17)
def window_op(ctx: NodeContext, size):
    return ctx.call(window, size, ctx.node.op_type, bool(ctx.attr("periodic", 1)),
                    torch_dtype(ctx.attr("output_datatype", 1)))
