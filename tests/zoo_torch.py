"""PyTorch architectures for the conversion tests and benchmarks (random weights, no torchvision)."""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv + BatchNorm + pooling + linear head: the shape of most image classifiers."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, classes)

    def forward(self, image):
        return self.head(torch.flatten(self.features(image), 1))


class GRUClassifier(nn.Module):
    """Two-layer GRU over a sequence, classifying from the last step."""

    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 4):
        super().__init__()
        self.rnn = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, sequence):
        out, _ = self.rnn(sequence)
        return self.head(out[:, -1])


class LSTMTagger(nn.Module):
    """Embedding + bidirectional LSTM over token ids: an integer input and a per-token output."""

    def __init__(self, vocab: int = 50, dim: int = 16, tags: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * dim, tags)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


class TinyTransformer(nn.Module):
    """A two-layer torch.nn.TransformerEncoder with a linear head, returning two outputs."""

    def __init__(self, dim: int = 32, heads: int = 4, classes: int = 3):
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        hidden = self.encoder(x)
        return {"logits": self.head(hidden.mean(1)), "hidden": hidden}


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2015) as torchvision lays it out: 4 stages of 2 basic blocks."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(512, classes)

    def forward(self, image):
        x = self.stages(self.stem(image))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise, 1x1 linear projection, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018), width 1.0, laid out as torchvision's."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
        cin = 32
        for expand, cout, repeats, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, image):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(image), 1), 1))


def _calibrated(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """BatchNorm statistics measured on random images (a cumulative average over a few batches), so
    that activations stay of order one through a deep random network instead of vanishing."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(*shape))
    return model.eval()


def _seeded(cls, **kwargs):
    torch.manual_seed(0)
    model = cls(**kwargs).eval()
    # Give BatchNorm non-trivial statistics so that folding it is really exercised.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def small_cnn():
    return _seeded(SmallCNN)


def gru_classifier():
    return _seeded(GRUClassifier)


def lstm_tagger():
    return _seeded(LSTMTagger)


def tiny_transformer():
    return _seeded(TinyTransformer)


def resnet18():
    return _seeded(ResNet18)


def resnet18_calibrated():
    """ResNet-18 whose BatchNorm statistics are measured on random images: outputs of order one."""
    torch.manual_seed(0)
    return _calibrated(ResNet18(), (4, 3, 224, 224))


def mobilenet_v2():
    torch.manual_seed(0)
    return _calibrated(MobileNetV2(), (4, 3, 224, 224))


class ActivationsCNN(nn.Module):
    """Each activation ONNX has its own op or Clip for, after a convolution with a bias: what the
    TF.js rewrites turn into fused convolutions (LeakyReLU, ReLU6, ELU) and ClipByValue (Hardtanh)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.LeakyReLU(0.1))
        self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6())
        self.pointwise = nn.Sequential(nn.Conv2d(16, 24, 1), nn.ELU())
        self.squash = nn.Sequential(nn.Conv2d(24, 24, 3, stride=2), nn.BatchNorm2d(24), nn.Hardtanh(-0.5, 0.5))
        self.head = nn.Linear(24, 5)

    def forward(self, image):
        x = self.squash(self.pointwise(self.depthwise(self.stem(image))))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def activations_cnn():
    torch.manual_seed(0)
    return _calibrated(ActivationsCNN(), (4, 3, 32, 32))


class EigenHead(nn.Module):
    """Uses torch.linalg.eigvals, which no ONNX exporter can translate."""

    def forward(self, x):
        return torch.linalg.eigvals(x).real


class UnsupportedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.eigen = EigenHead()

    def forward(self, x):
        return self.eigen(self.proj(x).reshape(-1, 2, 2))


def unsupported_net():
    return _seeded(UnsupportedNet)


class AttentionBlock(nn.Module):
    """Conv + GroupNorm, ConvTranspose, bilinear resize and nn.MultiheadAttention: the layers whose
    traced TorchScript graphs the TorchScript ONNX exporter cannot type ("unknown rank")."""

    def __init__(self, channels: int = 16, classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.norm = nn.GroupNorm(4, channels)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.attn = nn.MultiheadAttention(channels, 4, batch_first=True)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        y = self.up(torch.relu(self.norm(self.conv(x))))
        y = nn.functional.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=False)
        tokens = y.flatten(2).transpose(1, 2)
        attended, _ = self.attn(tokens, tokens, tokens)
        return self.head(attended.mean(1))


def attention_block():
    torch.manual_seed(0)
    return AttentionBlock().eval()


class ScriptedLoop(nn.Module):
    """A recurrence written as a Python loop over time: scripted, it becomes prim::Loop, which
    torch's TorchScript -> ExportedProgram converter does not take and the TorchScript exporter does."""

    def __init__(self, features: int = 8):
        super().__init__()
        self.cell = nn.Linear(features, features)

    def forward(self, sequence):
        state = torch.zeros_like(sequence[:, 0])
        for step in range(sequence.size(1)):
            state = torch.tanh(self.cell(sequence[:, step]) + state)
        return state


def scripted_loop():
    torch.manual_seed(0)
    return ScriptedLoop().eval()


class DeadHead(nn.Module):
    """A classifier whose ReLU never fires (bias -100): every output is 0 whatever the input, as
    with the random-weight transformers and deep nets whose activations vanish."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(16, 8)
        self.head = nn.Linear(8, 4)
        with torch.no_grad():
            self.body.bias.fill_(-100.0)
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


def dead_head():
    torch.manual_seed(0)
    return DeadHead().eval()


class SaturatedSoftmax(nn.Module):
    """Softmax over logits that hardly depend on the input: about 1/10 everywhere."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 10)
        with torch.no_grad():
            self.head.weight.mul_(1e-9)

    def forward(self, x):
        return torch.softmax(self.head(x), dim=-1)


def saturated_softmax():
    torch.manual_seed(0)
    return SaturatedSoftmax().eval()


class DefectProbe(nn.Module):
    """A small image net with each op the one-op defect tests break: a middle convolution, GELU
    (exact) and a bilinear resize, between BatchNorms calibrated on its inputs."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.GELU())
        self.middle = nn.Sequential(nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.BatchNorm2d(24), nn.GELU())
        self.refine = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1), nn.BatchNorm2d(24), nn.GELU())
        self.head = nn.Linear(24 + 16, classes)

    def forward(self, image):
        stem = self.stem(image)
        up = nn.functional.interpolate(self.refine(self.middle(stem)), scale_factor=2.0, mode="bilinear",
                                       align_corners=False)
        pooled = torch.cat([up, stem], 1).mean((2, 3))
        return self.head(pooled)


def defect_probe():
    torch.manual_seed(0)
    return _calibrated(DefectProbe(), (4, 3, 32, 32))


class _PreNormBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    """Patch-embedding convolution, a class token expanded to the batch, pre-norm blocks with
    nn.MultiheadAttention: the shape arithmetic every exporter writes around a ViT."""

    def __init__(self, dim: int = 32, heads: int = 4, depth: int = 2, classes: int = 10, image: int = 32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, 8)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image // 8) ** 2 + 1, dim) * 0.5)
        self.blocks = nn.Sequential(*[_PreNormBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, image):
        tokens = self.patch(image).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], 1) + self.pos
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def small_vit():
    torch.manual_seed(0)
    return SmallViT().eval()


class ShapeReadingBlock(nn.Module):
    """Reads its own shapes (``b, c, h, w = u.shape`` then reshapes by them) around
    nn.MultiheadAttention, with GroupNorm, ConvTranspose2d and a bilinear resize to a size computed
    from the input's: what a torch.jit.trace records as size arithmetic."""

    def __init__(self, channels: int = 16, classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.norm = nn.GroupNorm(4, channels)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.attn = nn.MultiheadAttention(channels, 4)
        self.head = nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        height, width = x.shape[2], x.shape[3]
        u = self.up(torch.relu(self.norm(self.conv(x))))
        u = nn.functional.interpolate(u, size=(height // 2, width // 2), mode="bilinear", align_corners=False)
        b, c, h, w = u.shape
        tokens = u.reshape(b, c, h * w).permute(2, 0, 1)
        attended, _ = self.attn(tokens, tokens, tokens)
        return self.head(attended.permute(1, 2, 0).reshape(b, c, h, w) + u)


def shape_reading_block():
    torch.manual_seed(0)
    return ShapeReadingBlock().eval()


def broken_factory():
    """A factory with a bug of its own: the error is the user's to fix, reported as such."""
    raise RuntimeError("checkpoint directory not configured")
