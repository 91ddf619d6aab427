"""AlexNet-, GoogLeNet- and ResNet-style models: shapes, parameter counts, blocks, and that each can learn."""
import pytest
import torch
from torch import nn

from trainwell.models import INIT_OF, REGISTRY, build_model
from trainwell.models.inception import InceptionModule
from trainwell.models.resnet import ResidualBlock

CONV_MODELS = ("convnet", "alexnet", "inception", "resnet")


def _build(name, shape, classes=10, **kwargs):
    return build_model({"name": name, "kwargs": kwargs, "input_shape": list(shape), "num_classes": classes})


@pytest.mark.parametrize("name", CONV_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_output_shapes_on_small_and_larger_images(name, shape):
    net = _build(name, shape, classes=7).eval()
    assert net(torch.zeros(2, *shape)).shape == (2, 7)


def test_alexnet_at_224_is_the_papers_layout():
    net = _build("alexnet", (3, 224, 224), classes=1000).eval()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert convs[0].kernel_size == (11, 11) and convs[0].stride == (4, 4)
    assert [m.out_features for m in net.modules() if isinstance(m, nn.Linear)] == [4096, 4096, 1000]
    assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    assert [n for n, _ in net.named_children() if n.startswith(("conv", "fc"))] == \
        ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]


@pytest.mark.parametrize("depth,params", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_imagenet_resnets_have_the_published_parameter_counts(depth, params):
    """The counts of torchvision's resnet18/34/50 (1000 classes): the same architecture, block for block."""
    net = _build("resnet", (3, 224, 224), classes=1000, depth=depth)
    assert sum(p.numel() for p in net.parameters()) == params


def test_cifar_resnet_family():
    for depth, blocks in ((20, 9), (32, 15), (56, 27)):
        net = _build("resnet", (3, 32, 32), depth=depth)
        assert sum(isinstance(m, ResidualBlock) for m in net.modules()) == blocks
    assert 0.26e6 < sum(p.numel() for p in _build("resnet", (3, 32, 32), depth=20).parameters()) < 0.28e6  # 0.27M
    with pytest.raises(Exception, match="6n\\+2"):
        _build("resnet", (3, 32, 32), depth=21)


def test_residual_blocks_on_their_own():
    x = torch.randn(2, 16, 8, 8)
    assert ResidualBlock(16, 16)(x).shape == (2, 16, 8, 8)
    assert ResidualBlock(16, 32, stride=2)(x).shape == (2, 32, 4, 4)
    assert ResidualBlock(16, 8, stride=2, kind="bottleneck")(x).shape == (2, 32, 4, 4)
    assert ResidualBlock(16, 32, stride=2, preact=True)(x).shape == (2, 32, 4, 4)
    block = ResidualBlock(16, 16).eval()
    nn.init.zeros_(block.last_norm.weight)
    assert torch.allclose(block(x), torch.relu(x))  # zero-initialised last BN: the block starts as identity


def test_zero_init_residual_zeroes_every_blocks_last_scale():
    net = _build("resnet", (3, 32, 32), depth=20, zero_init_residual=True)
    blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
    assert all(torch.all(b.last_norm.weight == 0) for b in blocks)


def test_inception_module_on_its_own():
    m = InceptionModule(192, 64, 96, 128, 16, 32, 32)  # GoogLeNet's 3a
    assert m.out_channels == 256 and m(torch.zeros(1, 192, 7, 7)).shape == (1, 256, 7, 7)
    net = _build("inception", (3, 32, 32))
    assert not any(isinstance(x, nn.Linear) and x.in_features > 1024 for x in net.modules())  # no big FC head


@pytest.mark.parametrize("name,kwargs", [("alexnet", {"width": 8}), ("inception", {"width": 8, "depth": 1}),
                                         ("resnet", {"depth": 8, "width": 8}),
                                         ("resnet", {"depth": 8, "width": 8, "preact": True})])
def test_each_architecture_overfits_one_batch(name, kwargs):
    """The course's sanity check: a net that cannot reach zero training error on 16 examples is broken."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 4
    net = _build(name, (3, 32, 32), classes=4, dropout=0.0, **kwargs)
    loss = _fit(net, x, y, steps=150)
    assert (net.eval()(x).argmax(1) == y).all(), f"{name}: final training loss {loss:.3f}"


def _fit(net, x, y, steps):
    """Adam at 3e-3 on one batch; the last training loss."""
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net.train()(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_every_registered_model_has_its_initialisation():
    assert set(INIT_OF) == set(REGISTRY)
    assert INIT_OF["resnet"] == "kaiming" and INIT_OF["mlp"] == "glorot"


def test_removing_layers_fixes_up_the_shapes_after_them():
    from trainwell.models.ablation import remove_layers

    net = _build("alexnet", (3, 32, 32), width=8)
    cut = remove_layers(net, ["conv3", "conv4", "fc7", "relu7", "drop7"], [3, 32, 32], 10)
    names = [n for n, _ in cut.named_children()]
    assert "conv3" not in names and "fc7" not in names and cut(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert cut.conv5.in_channels == cut.conv2.out_channels and cut.fc8.in_features == cut.fc6.out_features
    assert cut.conv1 is net.conv1  # untouched layers are the same objects
    spec = {"name": "alexnet", "kwargs": {"width": 8}, "input_shape": [3, 32, 32], "num_classes": 10,
            "remove": ["conv3"]}
    assert "conv3" not in dict(build_model(spec).named_children())  # the spec rebuilds the ablated net


def test_removing_an_unknown_or_the_last_layer_is_one_clear_error():
    from trainwell.errors import UserError
    from trainwell.models.ablation import remove_layers

    net = _build("alexnet", (3, 32, 32), width=8)
    with pytest.raises(UserError, match="no such layer; the layers are conv1"):
        remove_layers(net, ["conv9"], [3, 32, 32], 10)
    with pytest.raises(UserError, match="keep the last layer"):
        remove_layers(net, ["fc8"], [3, 32, 32], 10)


def test_the_tabular_model_embeds_every_input_periodically_beside_itself():
    from trainwell.models.tabular import EMBEDDING, FREQUENCIES, Periodic

    torch.manual_seed(0)
    net = _build("tabular", (12,), classes=2)
    periodic = [m for m in net.modules() if isinstance(m, Periodic)]
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(periodic) == 1 and periodic[0].frequency.shape == (12, FREQUENCIES)
    assert linear[0].in_features == 12 * (1 + EMBEDDING) and [m.out_features for m in linear] == [256, 128, 2]
    x = torch.randn(5, 12)
    out = periodic[0](x)
    assert torch.equal(out[:, :12], x)  # the input itself passes beside its embedding
    # input 0's embedding depends on input 0 alone
    x2 = x.clone()
    x2[:, 1:] = torch.randn(5, 11)
    assert torch.equal(periodic[0](x2)[:, 12:12 + EMBEDDING], out[:, 12:12 + EMBEDDING])
    # a table embeds its numbers, which come first, and passes its 0/1 indicators and one-hot slots as they are
    part = _build("tabular", (12,), classes=2, embed=5)
    first = [m for m in part.modules() if isinstance(m, nn.Linear)][0]
    assert first.in_features == 12 + 5 * EMBEDDING and [m for m in part.modules() if isinstance(m, Periodic)][0].m == 5
    assert not any(isinstance(m, Periodic) for m in _build("tabular", (12,), classes=2, embed=0).modules())
    # stripes along one input among 11 noise inputs: learned from 1,024 points and right on new ones, where the
    # plain MLP memorises its points and stays at chance on new ones (measured: 86% vs 52%)
    x, xt = torch.rand(1024, 12) * 6 - 3, torch.rand(1024, 12) * 6 - 3
    y, yt = ((x[:, 0] * 3).floor() % 2).long(), ((xt[:, 0] * 3).floor() % 2).long()
    _fit(net, x, y, steps=300)
    assert (net.eval()(xt).argmax(1) == yt).float().mean() > 0.75
    torch.manual_seed(0)
    plain = _build("mlp", (12,), classes=2)
    _fit(plain, x, y, steps=300)
    assert (plain.eval()(xt).argmax(1) == yt).float().mean() < 0.65


def test_convnet_pool_head_averages_each_map_and_any_image_size_gives_the_same_weights():
    import torch
    from torch import nn

    from trainwell.models.convnet import convnet

    small, large = convnet([3, 32, 32], 7, width=8, depth=3, head="pool"), convnet([3, 48, 64], 7, width=8, depth=3,
                                                                                 head="pool")
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in small)
    assert [p.shape for p in small.parameters()] == [p.shape for p in large.parameters()]  # no size-bound layer
    assert isinstance(small[-1], nn.Linear) and small[-1].in_features == 32  # 8 -> 16 -> 32 channels, one layer
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="head 'avg': use fc or pool"):
        convnet([3, 32, 32], 7, head="avg")
