"""Residual networks (He et al. 2016): basic and bottleneck blocks, the CIFAR and the ImageNet families.

    CIFAR family, depth 6n+2 (20, 32, 44, 56, 110): a 3x3 stem, three stages of n basic blocks at widths
        w, 2w, 4w (w = 16 in the paper), global average pooling, one linear layer.
    ImageNet family, depth 18, 34 (basic blocks) or 50, 101, 152 (bottleneck blocks): four stages at widths
        w, 2w, 4w, 8w (w = 64), a 7x7 stride-2 stem and a max-pool for inputs of 64 pixels and more, a 3x3
        stem without pooling for smaller ones (28x28, 32x32).
`preact` puts batch norm and ReLU before each convolution (He et al., "Identity mappings", 2016);
`zero_init_residual` starts every block's last batch-norm scale at 0, so each block begins as the identity.
"""
from __future__ import annotations

from torch import nn

from trainwell.models import activation as make_activation

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
IMAGENET_STAGES = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


class ResidualBlock(nn.Module):
    """out = relu(F(x) + shortcut(x)); F is two 3x3 convolutions ("basic") or 1x1 -> 3x3 -> 1x1 with a 4x
    wider output ("bottleneck"). The shortcut is the identity, or a 1x1 projection where the shape changes.

    >>> ResidualBlock(16, 32, stride=2)(torch.zeros(1, 16, 8, 8)).shape   # doctest: +SKIP
    torch.Size([1, 32, 4, 4])
    """

    expansion = {"basic": 1, "bottleneck": 4}

    def __init__(self, in_channels: int, channels: int, stride: int = 1, kind: str = "basic",
                 preact: bool = False, activation: str = "relu") -> None:
        super().__init__()
        if kind not in self.expansion:
            raise ValueError(f"block kind '{kind}': use basic or bottleneck")
        out = channels * self.expansion[kind]
        self.preact = preact
        if kind == "basic":
            shapes = [(in_channels, channels, 3, stride), (channels, out, 3, 1)]
        else:  # the stride sits on the 3x3 convolution (torchvision's "ResNet v1.5")
            shapes = [(in_channels, channels, 1, 1), (channels, channels, 3, stride), (channels, out, 1, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, padding=k // 2, bias=False) for i, o, k, s in shapes)
        # pre-activation normalises each conv's input; post-activation its output
        self.norms = nn.ModuleList(nn.BatchNorm2d(i if preact else o) for i, o, _, _ in shapes)
        self.act = make_activation(activation)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out:
            proj = [nn.Conv2d(in_channels, out, 1, stride, bias=False)]
            self.shortcut = nn.Sequential(*proj) if preact else nn.Sequential(*proj, nn.BatchNorm2d(out))

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The batch norm whose scale `zero_init_residual` sets to 0 (post-activation blocks only)."""
        return self.norms[-1]

    def forward(self, x):
        if self.preact:
            h = x
            for conv, norm in zip(self.convs, self.norms):
                h = conv(self.act(norm(h)))
            return h + self.shortcut(x)
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv(h))
            if i < len(self.convs) - 1:
                h = self.act(h)
        return self.act(h + self.shortcut(x))


def resnet(input_shape: list[int], num_classes: int, depth: int | None = None, width: int | None = None,
           preact: bool = False, zero_init_residual: bool = False, activation: str = "relu",
           dropout: float = 0.0, **_: object) -> nn.Module:
    """A ResNet for (C, H, W) inputs. Default depth: 20 (CIFAR family) below 64 pixels, 18 from 64 up;
    default width: 16 for the CIFAR family, 64 for the ImageNet family."""
    if len(input_shape) != 3:
        raise ValueError(f"resnet needs image input (C, H, W), got shape {input_shape}; use --model mlp")
    channels, h, w = input_shape
    large = min(h, w) >= 64
    depth = depth if depth is not None else (18 if large else 20)
    if depth in IMAGENET_STAGES:
        kind, counts = IMAGENET_STAGES[depth]
        width = width or 64
    elif depth in CIFAR_DEPTHS or (depth - 2) % 6 == 0 and depth >= 8:
        kind, counts = "basic", ((depth - 2) // 6,) * 3
        width = width or 16
    else:
        raise ValueError(f"depth {depth}: use 6n+2 (20, 32, 44, 56, 110) for the CIFAR family or "
                         f"{', '.join(map(str, IMAGENET_STAGES))} for the ImageNet family")
    if large:
        stem = [nn.Conv2d(channels, width, 7, 2, padding=3, bias=False), nn.BatchNorm2d(width),
                make_activation(activation), nn.MaxPool2d(3, 2, padding=1)]
    else:
        stem = [nn.Conv2d(channels, width, 3, 1, padding=1, bias=False)]
        if not preact:  # a pre-activation net normalises inside its first block instead
            stem += [nn.BatchNorm2d(width), make_activation(activation)]
    layers: list[nn.Module] = list(stem)
    in_ch = width
    for stage, n in enumerate(counts):
        for b in range(n):
            block = ResidualBlock(in_ch, width * 2**stage, stride=2 if stage > 0 and b == 0 else 1, kind=kind,
                                  preact=preact, activation=activation)
            if zero_init_residual and not preact:
                nn.init.zeros_(block.last_norm.weight)
            layers.append(block)
            in_ch = width * 2**stage * ResidualBlock.expansion[kind]
    if preact:
        layers += [nn.BatchNorm2d(in_ch), make_activation(activation)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_ch, num_classes))
    return nn.Sequential(*layers)
