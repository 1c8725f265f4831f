"""cytoself model (atlaskit.models.cytoself) and its building blocks (atlaskit.models.blocks)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from atlaskit.errors import ParameterError
from atlaskit.models.blocks import (
    MBConv,
    MLPHead,
    ResidualBlock,
    conv_output_size,
    drop_connect,
    mbconv_stack,
)
from atlaskit.models.cytoself import CytoselfConfig, CytoselfModel, ResNetDecoder


def _batch(cfg: CytoselfConfig, n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *cfg.input_shape), generator=g)
    if cfg.use_nucleus:
        x[:, 1] = x[:, 1] * 2 - 1  # nucleus distance in [-1, 1]
    y = torch.randint(0, cfg.num_classes, (n,), generator=g)
    return x, y


# ----------------------------------------------------------------------------- paper shapes
@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return CytoselfModel(CytoselfConfig.paper())


def test_paper_config_shapes():
    cfg = CytoselfConfig.paper()
    assert cfg.input_shape == (2, 100, 100)
    assert (cfg.local_size, cfg.local_dim) == (25, 64)
    assert (cfg.global_size, cfg.global_channels) == (4, 576)
    assert (cfg.vq2_splits, cfg.vq2_embedding_dim) == (9, 64)
    assert (cfg.local_codebook_size, cfg.global_codebook_size) == (2048, 2048)
    assert cfg.num_classes == 1311
    assert cfg.commitment == 0.25 and cfg.classifier_dropout == 0.5


def test_paper_model_structure(paper_model):
    m = paper_model
    assert m.vq1.codebook.shape == (2048, 64) and m.vq1.splits == 1
    assert m.vq2.codebook.shape == (2048, 64) and m.vq2.splits == 9
    lin1 = [l for l in m.classifier1.modules() if isinstance(l, nn.Linear)]
    lin2 = [l for l in m.classifier2.modules() if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin1] == [(25 * 25 * 64, 1000), (1000, 1311)]
    assert [(l.in_features, l.out_features) for l in lin2] == [(4 * 4 * 576, 1000), (1000, 1311)]
    assert any(isinstance(l, nn.Dropout) and l.p == 0.5 for l in m.classifier1.modules())
    n = m.num_parameters()
    assert 50_000_000 < n < 65_000_000, n  # 57,106,690: the two classifiers hold ~52M of it


def test_paper_forward_shapes(paper_model):
    m = paper_model.eval()
    x, y = _batch(m.config, n=1)
    with torch.no_grad():
        out = m(x)
    assert out.local_pre.shape == (1, 64, 25, 25)
    assert out.vq1.quantized.shape == (1, 64, 25, 25)
    assert out.global_pre.shape == (1, 576, 4, 4)
    assert out.vq2.quantized.shape == (1, 576, 4, 4)
    assert out.vq2.indices.shape == (1, 9, 4, 4)
    assert out.decoded_local.shape == (1, 64, 25, 25)
    assert out.reconstruction.shape == (1, 2, 100, 100)
    assert out.logits1.shape == out.logits2.shape == (1, 1311)
    enc = m.encode(x)
    assert enc["local_indices"].shape == (1, 25, 25)
    assert enc["global_indices"].shape == (1, 9, 4, 4)
    assert enc["global_"].shape == enc["global_pre"].shape == (1, 576, 4, 4)


# ----------------------------------------------------------------------------- tiny: training
def test_tiny_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    cfg = CytoselfConfig.tiny(num_classes=7)
    m = CytoselfModel(cfg).train()
    x, y = _batch(cfg, n=4)
    losses = m.compute_losses(x, y)
    assert set(losses) == {
        "loss", "reconstruction", "decoder2", "vq1", "vq2", "classifier1", "classifier2",
        "metric_perplexity1", "metric_perplexity2", "metric_accuracy1", "metric_accuracy2",
    }
    losses["loss"].backward()
    # codebooks are single parameters: unused rows get no gradient, the tensor as a whole does
    missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_loss_is_weighted_sum_and_metrics_are_detached():
    torch.manual_seed(1)
    cfg = CytoselfConfig.tiny(num_classes=5, vq_weight=0.5, classifier_weight=2.0, decoder2_weight=3.0)
    m = CytoselfModel(cfg)
    x, y = _batch(cfg)
    L = m.compute_losses(x, y)
    expected = (
        L["reconstruction"] + 3.0 * L["decoder2"] + 0.5 * (L["vq1"] + L["vq2"])
        + 2.0 * (L["classifier1"] + L["classifier2"])
    )
    torch.testing.assert_close(L["loss"], expected)
    for k, v in L.items():
        assert v.dim() == 0, k
        assert v.requires_grad == (not k.startswith("metric_")), k
    assert 1.0 <= L["metric_perplexity1"].item() <= cfg.local_codebook_size
    assert 1.0 <= L["metric_perplexity2"].item() <= cfg.global_codebook_size


def test_data_variance_scales_reconstruction_and_is_saved():
    torch.manual_seed(2)
    cfg = CytoselfConfig.tiny(num_classes=3)
    m = CytoselfModel(cfg).eval()
    x, y = _batch(cfg)
    a = m.compute_losses(x, y)["reconstruction"].item()
    m.set_data_variance(0.25)
    b = m.compute_losses(x, y)["reconstruction"].item()
    assert b == pytest.approx(4 * a, rel=1e-5)
    assert m.config.data_variance == 0.25 and cfg.data_variance == 1.0  # the model owns a copy
    assert m.state_dict()["data_variance"].item() == 0.25
    with pytest.raises(ValueError, match="data_variance"):
        m.set_data_variance(0.0)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"use_nucleus": False},
        {"nucleus_distance": False},
        {"split_quantization": False},
        {"id_pretext": False},
        {"classifier_input": "encoded", "decoder2_detach_target": True},
    ],
    ids=["full", "no-nucleus", "no-distance", "no-split", "no-pretext", "encoded-cls"],
)
def test_ablations_build_and_train(overrides):
    torch.manual_seed(0)
    cfg = CytoselfConfig.tiny(num_classes=5, **overrides)
    m = CytoselfModel(cfg).train()
    x, y = _batch(cfg, n=8)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    history = []
    for _ in range(6):
        opt.zero_grad()
        losses = m.compute_losses(x, y)
        losses["loss"].backward()
        opt.step()
        history.append(losses["loss"].item())
    assert sum(history[-2:]) / 2 < history[0], history

    out = m(x)
    assert out.reconstruction.shape == x.shape
    if not cfg.use_nucleus:
        assert cfg.in_channels == 1 and x.shape[1] == 1
    if not cfg.split_quantization:
        assert m.vq2.codebook.shape == (cfg.global_codebook_size, cfg.global_channels)
        assert m.encode(x)["global_indices"].shape == (8, 1, 4, 4)
    else:
        assert m.vq2.codebook.shape == (cfg.global_codebook_size, cfg.global_dim)
        assert m.encode(x)["global_indices"].shape == (8, 9, 4, 4)
    if not cfg.id_pretext:
        assert m.classifier1 is None and m.classifier2 is None
        assert out.logits1 is None
        assert "classifier1" not in losses and "metric_accuracy1" not in losses
        m.compute_losses(x)  # labels are optional without the pretext


# ----------------------------------------------------------------------------- bad inputs
@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return CytoselfModel(CytoselfConfig.tiny(num_classes=4))


@pytest.mark.parametrize(
    "shape",
    [(2, 1, 100, 100), (2, 3, 100, 100), (2, 2, 64, 64), (2, 2, 100, 96), (2, 100, 100)],
)
def test_bad_image_shape(tiny_model, shape):
    with pytest.raises(ValueError, match=r"\(B, 2, 100, 100\)"):
        tiny_model.compute_losses(torch.rand(shape), torch.zeros(shape[0], dtype=torch.long))


def test_protein_only_model_names_its_shape():
    m = CytoselfModel(CytoselfConfig.tiny(num_classes=4, use_nucleus=False))
    with pytest.raises(ValueError, match=r"\(B, 1, 100, 100\).*use_nucleus=False"):
        m.encode(torch.rand(1, 2, 100, 100))


def test_bad_dtype_and_labels(tiny_model):
    x = torch.rand(2, 2, 100, 100)
    with pytest.raises(ValueError, match="floating-point"):
        tiny_model(torch.ones(2, 2, 100, 100, dtype=torch.uint8))
    with pytest.raises(ValueError, match="required"):
        tiny_model.compute_losses(x)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        tiny_model.compute_losses(x, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tiny_model.compute_losses(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="integer"):
        tiny_model.compute_losses(x, torch.tensor([0.0, 1.0]))


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("preset", ["paper", "small", "tiny", "port_demo"])
def test_config_round_trip(preset):
    cfg = getattr(CytoselfConfig, preset)(num_classes=17, split_quantization=False, data_variance=0.3)
    data = json.loads(json.dumps(cfg.to_dict()))
    again = CytoselfConfig.from_dict(data)
    assert again == cfg
    assert again.encoder1_stages == cfg.encoder1_stages and isinstance(again.classifier_hidden, tuple)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown CytoselfConfig field"):
        CytoselfConfig.from_dict({"num_clases": 3})
    with pytest.raises(ValueError, match="num_classes"):
        CytoselfConfig(num_classes=0)
    with pytest.raises(ValueError, match="classifier_input"):
        CytoselfConfig.tiny(3, classifier_input="logits")
    with pytest.raises(ValueError, match="MBConv stage"):
        CytoselfConfig.tiny(3, encoder1_stages=((1, 3, 1, 8),))
    with pytest.raises(ValueError, match="global_upsample_mode"):
        CytoselfConfig.tiny(3, global_upsample_mode="cubic")
    for bad in ((), (1, 1), (3,), (0, 2)):
        with pytest.raises(ValueError, match="classifiers"):
            CytoselfConfig.tiny(3, classifiers=bad)
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="decoder_hidden"):
            CytoselfConfig.tiny(3, decoder_hidden=bad)


def test_public_port_configurations():
    """The PyTorch port's models: decoders as wide as their inputs, and the README demo."""
    port = CytoselfConfig.pytorch_port()
    assert port.decoder_hidden is None and port.classifiers == (1, 2)
    assert CytoselfConfig.from_dict(json.loads(json.dumps(port.to_dict()))) == port
    demo = CytoselfConfig.port_demo(40)
    assert (demo.local_codebook_size, demo.global_codebook_size, demo.vq2_splits) == (512, 512, 1)
    assert demo.global_channels == 64 and demo.classifiers == (2,)


def test_decoder_without_first_conv_runs_at_input_width():
    dec = ResNetDecoder(40, 2, 5, 20, hidden=None, min_hidden=4, residual_units=1)
    assert isinstance(dec.first, nn.Identity)
    convs = [m for m in dec.blocks.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 40  # first residual unit at the input width
    assert [block[-1][0].out_channels for block in dec.blocks] == [20, 10]  # halving per block
    assert dec(torch.rand(2, 40, 5, 5)).shape == (2, 2, 20, 20)


@pytest.mark.parametrize("levels", [(2,), (1,)])
def test_one_classifier_level(levels):
    cfg = CytoselfConfig.tiny(5, classifiers=levels)
    torch.manual_seed(0)
    model = CytoselfModel(cfg)
    x, y = _batch(cfg)
    losses = model.compute_losses(x, y)
    k, other = levels[0], 3 - levels[0]
    assert f"classifier{k}" in losses and f"classifier{other}" not in losses
    assert f"metric_accuracy{k}" in losses and f"metric_accuracy{other}" not in losses
    expected = (losses["reconstruction"] + losses["decoder2"] + losses["vq1"] + losses["vq2"]
                + losses[f"classifier{k}"])
    torch.testing.assert_close(losses["loss"], expected)
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert getattr(model, f"classifier{other}") is None


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    cfg = CytoselfConfig.tiny(num_classes=6)
    m = CytoselfModel(cfg)
    m.set_data_variance(0.05)
    path = tmp_path / "ckpt.pt"
    torch.save({"config": m.config.to_dict(), "state": m.state_dict()}, path)
    blob = torch.load(path, weights_only=True)
    m2 = CytoselfModel(CytoselfConfig.from_dict(blob["config"]))
    m2.load_state_dict(blob["state"])
    m.eval()
    m2.eval()
    x, y = _batch(cfg)
    torch.testing.assert_close(m.reconstruct(x), m2.reconstruct(x))
    assert m2.config.data_variance == 0.05 and m2.data_variance.item() == pytest.approx(0.05)


# ----------------------------------------------------------------------------- analysis API
def test_encode_is_consistent(tiny_model):
    m = tiny_model.eval()
    x, _ = _batch(m.config, n=3)
    enc = m.encode(x)
    assert not any(v.requires_grad for v in enc.values())
    assert enc["local_indices"].dtype == torch.long
    torch.testing.assert_close(enc["local"], m.vq1.lookup(enc["local_indices"].unsqueeze(1)))
    torch.testing.assert_close(enc["global_"], m.vq2.lookup(enc["global_indices"]))
    assert m.reconstruct(x).shape == x.shape


def test_memory_format_does_not_change_results():
    torch.manual_seed(4)
    cfg = CytoselfConfig.tiny(num_classes=3)
    a = CytoselfModel(cfg, channels_last=True).eval()
    b = CytoselfModel(cfg, channels_last=False).eval()
    b.load_state_dict(a.state_dict())
    x, _ = _batch(cfg)
    torch.testing.assert_close(a.reconstruct(x), b.reconstruct(x), rtol=1e-4, atol=1e-5)
    ea, eb = a.encode(x), b.encode(x)
    torch.testing.assert_close(ea["global_pre"], eb["global_pre"], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- blocks
def test_mbconv_shapes_and_residual():
    x = torch.randn(2, 16, 25, 25)
    block = MBConv(16, 16, kernel_size=5, stride=1, expand_ratio=6)
    assert block.use_residual and block(x).shape == x.shape
    down = MBConv(16, 24, kernel_size=3, stride=2)
    assert not down.use_residual and down(x).shape == (2, 24, 13, 13)
    stack, out_ch = mbconv_stack(16, [(6, 3, 2, 24, 2), (6, 5, 2, 40, 1)])
    assert out_ch == 40 and stack(x).shape == (2, 40, 7, 7)
    assert [conv_output_size(s, 3, 2) for s in (100, 50, 25, 13, 7)] == [50, 25, 13, 7, 4]
    with pytest.raises(ValueError, match="stride"):
        MBConv(8, 8, stride=3)


def test_drop_connect_and_heads():
    x = torch.ones(1000, 1, 1, 1)
    torch.manual_seed(0)
    y = drop_connect(x, 0.2, training=True)
    assert set(y.unique().tolist()) <= {0.0, 1.25}
    assert abs(y.mean().item() - 1.0) < 0.1
    assert drop_connect(x, 0.2, training=False) is x
    head = MLPHead(12, (8, 8), 3, dropout=0.5)
    assert head(torch.randn(5, 3, 2, 2)).shape == (5, 3)
    assert ResidualBlock(6)(torch.randn(2, 6, 5, 5)).shape == (2, 6, 5, 5)
    dec = ResNetDecoder(576, 64, 4, 25, linear_output=False)
    assert dec(torch.randn(2, 576, 4, 4)).shape == (2, 64, 25, 25)


# ----------------------------------------------------------------------------- recomputation
def _step_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    model.compute_losses(x, y)["loss"].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _saved_bytes(fn) -> int:
    """Bytes of distinct tensor storages autograd keeps for the backward pass of ``fn()``."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


@pytest.mark.parametrize("level", ["elementwise", "residual"])
def test_recompute_is_bit_identical_and_reruns_only_what_its_level_says(level):
    from atlaskit.models.blocks import set_recompute
    from atlaskit.profiling import count_flops

    torch.manual_seed(5)
    cfg = CytoselfConfig.tiny(num_classes=5, decoder_hidden=None)  # port-style decoders
    ref = CytoselfModel(cfg).train()
    rec = CytoselfModel(cfg).train()
    rec.load_state_dict(ref.state_dict())
    assert set_recompute(rec, level) > 0  # encoders' ConvBNAct (MBConv, stem, head) and both decoders
    x, y = _batch(cfg)
    for step in range(2):  # two steps: the second starts from updated running statistics
        torch.manual_seed(step)
        g_ref = _step_grads(ref, x, y)
        torch.manual_seed(step)
        g_rec = _step_grads(rec, x, y)
        assert g_ref.keys() == g_rec.keys()
        for name in g_ref:
            assert torch.equal(g_ref[name], g_rec[name]), name
        for (name, a), (_, b) in zip(ref.named_buffers(), rec.named_buffers()):
            assert torch.equal(a, b), name  # running stats updated once, not twice
    flops = [count_flops(lambda m=m: m.compute_losses(x, y)["loss"].backward()).total for m in (ref, rec)]
    if level == "elementwise":
        # Same convolution and matmul work: nothing but batch norm / activations is rerun.
        assert flops[0] == flops[1]
    else:
        # Exactly one more forward pass of every residual block (decoder units, encoder MBConvs).
        units = [m for m in rec.modules() if isinstance(m, (ResidualBlock, MBConv))]
        inputs = []
        hooks = [u.register_forward_pre_hook(lambda u, a: inputs.append((u, a[0].detach()))) for u in units]
        with torch.no_grad():
            rec.eval()
            rec.compute_losses(x, y)
            rec.train()
        for h in hooks:
            h.remove()
        assert len(inputs) == len(units) > 0
        unit_forward = sum(count_flops(lambda u=u, a=a: u(a)).total for u, a in inputs)
        assert flops[1] == flops[0] + unit_forward


def test_recompute_halves_what_a_residual_stack_keeps_for_backward():
    from atlaskit.models.blocks import ConvBNAct, set_recompute

    torch.manual_seed(0)
    net = nn.Sequential(ResidualBlock(16), ResidualBlock(16), ConvBNAct(16, 8), nn.Conv2d(8, 2, 3, padding=1))
    x = torch.randn(2, 16, 20, 20)
    plain = _saved_bytes(lambda: net(x))
    set_recompute(net)
    kept = _saved_bytes(lambda: net(x))
    assert kept < 0.6 * plain, (kept, plain)
    set_recompute(net, "residual")
    kept_residual = _saved_bytes(lambda: net(x))
    # Each unit keeps its input only (not its two convolution outputs): a third of "elementwise".
    assert kept_residual < 0.5 * kept, (kept_residual, kept)
    net.eval()  # evaluation: recomputation is off, the usual graph is kept
    in_eval = _saved_bytes(lambda: net(x))
    assert set_recompute(net, False) == 7  # 2 residual blocks, their 4 ConvBNAct, 1 ConvBNAct
    with pytest.raises(ParameterError, match="'elementwise', 'residual'"):
        set_recompute(net, "convolutions")
    assert _saved_bytes(lambda: net(x)) == in_eval


def test_residual_recompute_redraws_the_same_drop_connect_mask():
    """An MBConv with stochastic depth, rerun in the backward pass: same mask, same gradients."""
    from atlaskit.models.blocks import set_recompute

    torch.manual_seed(0)
    plain = MBConv(8, 8, drop_connect_rate=0.5).train()
    rec = MBConv(8, 8, drop_connect_rate=0.5).train()
    rec.load_state_dict(plain.state_dict())
    set_recompute(rec, "residual")
    x = torch.randn(16, 8, 6, 6)
    grads = []
    for m in (plain, rec):
        torch.manual_seed(1)  # the same masks in both
        m(x).square().sum().backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
        # The rerun restored the RNG it used: the stream continues as after one plain forward.
        grads[-1]["next draw"] = torch.rand(3)
    for name in grads[0]:
        assert torch.equal(grads[0][name], grads[1][name]), name
