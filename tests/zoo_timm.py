"""timm architectures for the zoo tests and benchmark: random weights, BatchNorm calibrated, nothing
downloaded.

timm imports torchvision, and torchvision's wheels on PyPI are CUDA builds whose C++ operators
cannot load beside the CPU torch pinned here: importing the wheel as it is fails while it registers
fake kernels for those operators (``torchvision::nms does not exist``). The classification models
use none of them. So timm and the torchvision wheel live in a folder of their own
(``.venv/peers/timm``, installed by ``make install`` with ``--no-deps``, never in modelport's
site-packages where transformers would find them), and :func:`import_timm` puts that folder on the
path and stands in an empty module for ``torchvision._meta_registrations``: torchvision's
pure-Python layers and transforms then import, its C++ operators stay absent (``_has_ops()`` is
False), and CPU torch is untouched.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
from torch import nn

PEERS = Path(__file__).resolve().parent.parent / ".venv" / "peers" / "timm"

# (timm name, creation kwargs, input height/width): one architecture per family, small inputs where the
# model takes any size. ``SUITE`` below is the subset the test suite runs; the benchmark runs them all.
ARCHITECTURES: list[tuple[str, dict, int]] = [
    ("resnet18", {}, 64),
    ("resnext26ts", {}, 64),
    ("seresnext26d_32x4d", {}, 64),
    ("efficientnet_b0", {}, 64),
    ("tf_efficientnetv2_b0", {}, 64),
    ("mobilenetv3_small_100", {}, 64),
    ("mobilenetv4_conv_small", {}, 64),
    ("convnext_atto", {}, 64),
    ("regnetx_002", {}, 64),
    ("regnety_002", {}, 64),
    ("ghostnet_100", {}, 64),
    ("densenet121", {}, 64),
    ("inception_v3", {}, 96),
    ("vit_tiny_patch16_224", {"img_size": 64}, 64),
    ("deit_tiny_patch16_224", {"img_size": 64}, 64),
    ("swin_tiny_patch4_window7_224", {"img_size": 112, "window_size": 7}, 112),
    ("levit_128s", {"img_size": 128}, 128),
    ("mobilevit_xxs", {}, 64),
    ("mobilevitv2_050", {}, 64),
    ("efficientformer_l1", {}, 224),
    ("poolformer_s12", {}, 64),
    ("fastvit_t8", {}, 64),
    ("repvit_m1", {}, 64),
    ("edgenext_xx_small", {}, 64),
    ("hrnet_w18_small", {}, 64),
    ("dla34", {}, 64),
    ("lcnet_050", {}, 64),
    ("hgnetv2_b0", {}, 64),
    ("efficientvit_b0", {}, 64),
    ("mobileone_s0", {}, 64),
    ("xcit_nano_12_p16_224", {"img_size": 64}, 64),
    ("cait_xxs24_224", {"img_size": 64}, 64),
    ("coat_lite_tiny", {"img_size": 64}, 64),
    ("maxvit_nano_rw_256", {"img_size": 64}, 64),
    ("beit_base_patch16_224", {"img_size": 64, "depth": 2}, 64),
    ("eva02_tiny_patch14_224", {"img_size": 56}, 56),
    ("pvt_v2_b0", {}, 64),
    ("mixnet_s", {}, 64),
    ("rexnet_100", {}, 64),
    ("dpn68", {}, 64),
    ("cspresnet50", {}, 64),
    ("res2net50_14w_8s", {}, 64),
    ("tiny_vit_5m_224", {}, 224),
    ("davit_tiny", {}, 64),
    ("inception_next_atto", {}, 64),
    ("starnet_s1", {}, 64),
    ("pit_ti_224", {"img_size": 64}, 64),
    ("visformer_tiny", {"img_size": 64}, 64),
    ("ese_vovnet19b_dw", {}, 64),
    ("mambaout_femto", {}, 64),
]
SUITE = ("resnet18", "mobilenetv3_small_100", "convnext_atto", "vit_tiny_patch16_224", "inception_v3")


def available() -> bool:
    return (PEERS / "timm").is_dir()


def import_timm():
    """timm, importable beside CPU torch (see the module docstring)."""
    if "timm" in sys.modules:
        return sys.modules["timm"]
    if not available():
        raise ImportError(f"timm is installed by `make install` into {PEERS}")
    if str(PEERS) not in sys.path:
        sys.path.append(str(PEERS))
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import timm
    return timm


def calibrate(model: nn.Module, shape: tuple[int, ...], seed: int = 1) -> nn.Module:
    """BatchNorm statistics of standard-normal images (a cumulative average over three batches, as
    a trained model's are of its data), so that activations keep a unit scale through the network."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    torch.manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(*shape))
    return model.eval()


def build(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    """The architecture ``name`` of ARCHITECTURES: (calibrated model in eval mode, input shape)."""
    kwargs, size = next((k, s) for n, k, s in ARCHITECTURES if n == name)
    timm = import_timm()
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs)
    _live_branches(model)
    _unit_head(model)
    shape = (4, 3, size, size)
    return calibrate(model, shape), (1, 3, size, size)


def _live_branches(model: nn.Module) -> None:
    """Wake the residual branches that timm initialises (near) dead for stable training: the last
    BatchNorm of each ResNet block starts with gamma 0, ConvNeXt/CaiT/BEiT layer scales at 1e-6..1e-5.
    Left so, a whole branch contributes nothing and a defect inside it cannot show; a trained model's
    scales are of order 0.1..1, which is what they get here."""
    generator = torch.Generator().manual_seed(3)
    for name, parameter in model.named_parameters():
        if parameter.ndim == 1 and parameter.numel() > 1 and not name.endswith("bias") \
                and float(parameter.detach().abs().max()) < 1e-3:
            with torch.no_grad():
                parameter.copy_(0.2 + 0.4 * torch.rand(parameter.shape, generator=generator))


def _unit_head(model: nn.Module) -> None:
    """Re-initialise the classifier at fan-in scale: some families (BEiT, EVA) start it near zero for
    fine-tuning, which leaves logits of ~1e-3 on which any tolerance passes."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    parts = head if isinstance(head, (tuple, list)) else [head]  # LeViT: (head, distillation head)
    heads = [layer for part in parts if isinstance(part, nn.Module) for layer in part.modules()
             if isinstance(layer, (nn.Linear, nn.Conv2d))]
    generator = torch.Generator().manual_seed(2)
    for layer in heads:
        fan_in = layer.weight[0].numel()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) / fan_in ** 0.5)


def factory(name: str):
    """A zero-argument factory for ``name``, as ``package.module:function`` sources take."""
    def make():
        return build(name)[0]
    make.__name__ = name.replace(".", "_")
    return make


def __getattr__(attribute: str):
    # tests.zoo_timm:resnet18 as a modelport factory spec
    names = {n.replace(".", "_") for n, _, _ in ARCHITECTURES}
    if attribute in names:
        return factory(next(n for n, _, _ in ARCHITECTURES if n.replace(".", "_") == attribute))
    raise AttributeError(attribute)
