"""TNet structure, weight loading (bare-PSPNet and older TNet key layouts, ImageNet offline), checkpoints."""
import re
from urllib.error import URLError

import pytest
import torch
import torchvision

from models import TNet, WeightsError, load_backbone_weights, load_tnet, load_tnet_state
from utils import save_checkpoint


@pytest.fixture(scope="module")
def resnet_tnet():
    torch.manual_seed(0)
    return TNet("resnet50").eval()


def test_resnet50_tnet_structure_and_shapes(resnet_tnet):
    net = resnet_tnet.net
    assert [len(getattr(net.feats, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]  # Bottleneck 3-4-6-3
    assert net.feats.layer3[0].conv2.stride == (1, 1) and net.feats.layer3[1].conv2.dilation == (2, 2)
    assert net.feats.layer4[1].conv2.dilation == (4, 4)
    assert [s[0].output_size for s in net.psp.stages] == [1, 2, 3, 6]
    assert net.psp.stages[0][1].in_channels == net.psp.stages[0][1].out_channels == 2048
    assert net.psp.stages[0][1].bias is None
    assert (net.psp.bottleneck.in_channels, net.psp.bottleneck.out_channels) == (5 * 2048, 1024)
    assert [(u.conv[0].in_channels, u.conv[0].out_channels) for u in (net.up_1, net.up_2, net.up_3)] == \
        [(1024, 256), (256, 64), (64, 64)]
    assert (net.final.in_channels, net.final.out_channels) == (64, 3)
    assert net.drop_1.p == 0.3 and net.drop_2.p == 0.15
    with torch.no_grad():
        x = torch.randn(1, 3, 96, 96)
        assert net.feats(x).shape == (1, 2048, 12, 12)  # output stride 8
        assert resnet_tnet(x).shape == (1, 3, 96, 96)


@pytest.mark.parametrize("old_prefix", ["backbone.", "pspnet."])
def test_weights_saved_under_the_networks_earlier_names_load(tmp_path, old_prefix):
    """TNet's network was once the attribute ``backbone``, then ``pspnet`` (though it may hold the U-Net):
    state dicts with such keys (older checkpoints, the shipped weights) load into ``TNet.net`` and give
    the same output."""
    from models.weights import DEFAULT_WEIGHTS, normalize_tnet_keys

    torch.manual_seed(0)
    model = TNet("mobilenetv3", decoder="unet").eval()
    assert all(k.startswith("net.") for k in model.state_dict())
    old = {old_prefix + k[len("net."):]: v.clone() for k, v in model.state_dict().items()}
    assert set(normalize_tnet_keys(old)) == set(model.state_dict())
    fresh = TNet("mobilenetv3", decoder="unet").eval()
    load_tnet_state(fresh, old)
    save_checkpoint({"arch": model.arch, "model": {"module." + k: v for k, v in old.items()}}, tmp_path / "old.pth")
    from_file = load_tnet(tmp_path / "old.pth")  # a DataParallel checkpoint of the old layout: both prefixes
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x)) and torch.equal(from_file(x), model(x))
    shipped = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)["model"]
    assert all(k.startswith("pspnet.") for k in shipped)  # published before the last rename: mapped on load
    loaded = load_tnet(DEFAULT_WEIGHTS)
    assert torch.equal(loaded.net.final.weight, shipped["pspnet.final.weight"].float())


def test_compact_tnet_any_input_size():
    model = TNet("mobilenetv3").eval()
    with torch.no_grad():
        for h, w in ((64, 64), (70, 50)):
            assert model(torch.randn(2, 3, h, w)).shape == (2, 3, h, w)


def test_bare_pspnet_layout_state_dict_loads(resnet_tnet):
    """A DataParallel-saved bare PSPNet (module.feats…, its classifier as final.0…, with an auxiliary
    classifier head) loads and gives the same output."""
    bare = {}
    for key, value in resnet_tnet.state_dict().items():
        key = key.replace("net.", "module.", 1).replace("module.final.", "module.final.0.")
        bare[key] = value.clone()
    bare["module.classifier.0.weight"] = torch.randn(256, 1024)  # the auxiliary image-level head: dropped
    bare["module.classifier.0.bias"] = torch.randn(256)
    assert "module.feats.layer1.0.conv1.weight" in bare and "module.psp.stages.0.1.weight" in bare
    fresh = TNet("resnet50").eval()
    load_tnet_state(fresh, bare)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fresh(x), resnet_tnet(x), atol=1e-5)


def test_wrong_shapes_are_refused_in_one_line(tmp_path):
    small = TNet("mobilenetv3")
    path = tmp_path / "ckpt.pth"
    save_checkpoint({"arch": {"backbone": "resnet50", "num_classes": 3}, "model": small.state_dict()}, path)
    with pytest.raises(WeightsError) as err:
        load_tnet(path)
    assert "do not fit" in str(err.value) and "\n" not in str(err.value)
    bad = tmp_path / "not_a_checkpoint.pth"
    bad.write_bytes(b"hello")
    with pytest.raises(WeightsError, match="not a readable"):
        load_tnet(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_tnet(tmp_path / "missing.pth")


def test_checkpoint_round_trip_fp16(tmp_path):
    model = TNet("mobilenetv3").eval()
    path = tmp_path / "small.pth"
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint({"arch": model.arch, "model": half}, path)
    loaded = load_tnet(path)
    assert loaded.arch == model.arch and not loaded.training
    assert next(loaded.parameters()).dtype == torch.float32
    w = model.net.final.weight
    assert torch.allclose(loaded.net.final.weight, w.half().float())


def test_imagenet_weights_offline_give_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.raises(WeightsError) as err:
        load_backbone_weights(TNet("mobilenetv3"), "imagenet")
    message = str(err.value)
    assert "\n" not in message and "--pretrained" in message and "mobilenet_v3_large" in message


def test_imagenet_weights_from_the_torch_cache(tmp_path, monkeypatch):
    """With the file in $TORCH_HOME/hub/checkpoints, 'imagenet' loads it without any network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    tv = torchvision.models.mobilenet_v3_large(weights=None, dilated=True)
    filename = torchvision.models.MobileNet_V3_Large_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(tv.state_dict(), cache / filename)
    model = TNet("mobilenetv3")
    what = load_backbone_weights(model, "imagenet")
    assert "ImageNet" in what
    assert torch.equal(model.net.feats[0][0].weight, tv.features[0][0].weight)


def test_pretrained_from_a_path_and_refusals(tmp_path):
    tv = torchvision.models.mobilenet_v3_large(weights=None)
    path = tmp_path / "mnv3.pth"
    torch.save(tv.state_dict(), path)
    model = TNet("mobilenetv3")
    load_backbone_weights(model, str(path))
    assert torch.equal(model.net.feats[4].block[0][0].weight, tv.features[4].block[0][0].weight)
    with pytest.raises(WeightsError, match="does not fit"):
        load_backbone_weights(TNet("resnet50"), str(path))  # a MobileNet file for a ResNet
    assert "random" in load_backbone_weights(TNet("mobilenetv3"), "none")
    with pytest.raises(WeightsError, match="not found"):
        load_backbone_weights(TNet("mobilenetv3"), str(tmp_path / "nope.pth"))


def test_export_writes_fp16_weights_that_load(tmp_path):
    from models.export import main as export_main

    model = TNet("mobilenetv3").eval()
    ckpt = tmp_path / "ckpt.pth"
    save_checkpoint({"arch": model.arch, "model": model.state_dict(), "optimizer": {"state": {}}, "epoch": 7,
                     "best_metric": 0.9, "args": {"patch": 256, "data_dir": "/private/path"}}, ckpt)
    out = tmp_path / "w.pth"
    assert export_main([str(ckpt), str(out)]) == 0
    saved = torch.load(out, weights_only=True)
    assert set(saved) == {"arch", "model", "meta"}
    assert saved["meta"]["epoch"] == 7 and saved["meta"]["recipe"] == {"patch": 256}
    assert saved["meta"]["input_size"] == 256 and load_tnet(out).meta["input_size"] == 256
    # the training checkpoint itself is inferred at its training patch too, not at the 400 of files that don't say
    from idphoto.runner import model_input_size
    assert model_input_size(load_tnet(ckpt)) == 256
    save_checkpoint({"arch": model.arch, "model": model.state_dict()}, tmp_path / "bare.pth")
    assert model_input_size(load_tnet(tmp_path / "bare.pth")) == 400
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    assert out.stat().st_size < ckpt.stat().st_size * 0.6
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(load_tnet(out)(x), model(x), atol=0.05)
    assert export_main([str(tmp_path / "missing.pth"), str(tmp_path / "x.pth")]) == 1
    assert not (tmp_path / "x.pth").exists()


# ------------------------------------------------------------------------------------------ compact U-Net TNet
def test_unet_tnet_feeds_every_stride_to_the_decoder():
    model = TNet("mobilenetv3", decoder="unet").eval()
    assert model.arch == {"backbone": "mobilenetv3", "num_classes": 3, "decoder": "unet"}
    net = model.net
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        feats = net.encoder(x)
        assert [tuple(f.shape[-2:]) for f in feats] == [(64, 48), (32, 24), (16, 12), (8, 6), (4, 3)]  # strides 2…32
        assert [f.shape[1] for f in feats] == [16, 24, 40, 112, 960]
        # each up-block concatenates the encoder map of its stride
        assert net.up16.conv[0].in_channels == 128 + 112 and net.up2.conv[0].in_channels == 32 + 16
        assert [s[0].output_size for s in net.psp.stages] == [1, 2, 3, 6]
        for h, w in ((64, 64), (70, 50), (320, 320)):
            assert model(torch.randn(2, 3, h, w)).shape == (2, 3, h, w)
    n = sum(p.numel() for p in model.parameters())
    assert n * 2 < 20 * 2**20   # the default weights' budget, in float16


def test_unet_decoder_skip_connections_carry_detail():
    """The output depends on the stride-2 encoder features: zeroing them changes the logits (a decoder that
    ignored its skips would not notice)."""
    torch.manual_seed(0)
    model = TNet("mobilenetv3", decoder="unet").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        up2 = model.net.up2
        original = up2.forward
        up2.forward = lambda y, skip: original(y, torch.zeros_like(skip))
        assert not torch.allclose(model(x), ref)


def test_unet_needs_the_mobilenet_backbone_and_decoders_are_checked():
    with pytest.raises(ValueError, match="unet decoder needs"):
        TNet("resnet50", decoder="unet")
    with pytest.raises(ValueError, match="unknown decoder"):
        TNet("mobilenetv3", decoder="fpn")


def test_unet_checkpoint_round_trip_and_imagenet_trunk(tmp_path):
    model = TNet("mobilenetv3", decoder="unet").eval()
    path = tmp_path / "unet.pth"
    save_checkpoint({"arch": model.arch, "model": model.state_dict()}, path)
    loaded = load_tnet(path)
    assert loaded.arch["decoder"] == "unet"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
    # a torchvision-format MobileNetV3 file initialises the U-Net's encoder
    tv = torchvision.models.mobilenet_v3_large(weights=None)
    torch.save(tv.state_dict(), tmp_path / "mnv3.pth")
    fresh = TNet("mobilenetv3", decoder="unet")
    load_backbone_weights(fresh, str(tmp_path / "mnv3.pth"))
    assert torch.equal(fresh.net.encoder.features[4].block[0][0].weight, tv.features[4].block[0][0].weight)
    # a checkpoint naming an unknown decoder is refused in one line
    save_checkpoint({"arch": {**model.arch, "decoder": "nope"}, "model": model.state_dict()}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="unknown decoder"):
        load_tnet(tmp_path / "bad.pth")


def test_empty_and_malformed_checkpoints_are_weights_errors_naming_the_file(tmp_path, capsys):
    from models.export import main as export_main

    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    arch_str = tmp_path / "arch_str.pth"
    save_checkpoint({"arch": "mobilenetv3", "model": TNet("mobilenetv3").state_dict()}, arch_str)
    not_tensors = tmp_path / "lists.pth"
    save_checkpoint({"model": {"backbone.x": [1, 2]}}, not_tensors)
    for path, message in ((empty, "is empty (0 bytes)"), (arch_str, "its 'arch' entry is a str"),
                          (not_tensors, "not named tensors")):
        with pytest.raises(WeightsError, match=re.escape(message)) as info:
            load_tnet(path)
        assert str(path) in str(info.value)
        assert export_main([str(path), str(tmp_path / "out.pth")]) == 1  # a message, not a traceback
        err = capsys.readouterr().err
        assert err.startswith("export: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.pth").exists()
