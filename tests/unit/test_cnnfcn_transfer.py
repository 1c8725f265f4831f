"""Transfer learning in chapter 03: the torchvision-compatible Inception-V3 and its checkpoint
loader, the pretrain → fine-tune path of the chapter's CNN, the transfer table and ledger row."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.inception import (
    TORCHVISION_PARAMETERS,
    HPAInception,
    InceptionOutputs,
    InceptionV3,
    adapt_to_hpa,
    inception_step,
    load_inception_checkpoint,
    rgb_composite_weights,
)


@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    return InceptionV3()


def test_parameter_count_is_torchvisions(inception):
    # torchvision documents num_params = 27,161,264 for inception_v3 (aux_logits=True, 1000 classes)
    assert sum(q.numel() for q in inception.parameters()) == TORCHVISION_PARAMETERS == 27_161_264
    without_aux = InceptionV3(aux_logits=False)
    aux = sum(q.numel() for q in inception.AuxLogits.parameters())
    assert sum(q.numel() for q in without_aux.parameters()) == TORCHVISION_PARAMETERS - aux


def test_torchvision_key_names_and_shapes(inception):
    state = inception.state_dict()
    # a sample of torchvision's keys with their shapes (stem, each block type, aux head, classifier)
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "AuxLogits.conv1.conv.weight": (768, 128, 5, 5),
        "AuxLogits.fc.weight": (1000, 768),
        "fc.weight": (1000, 2048),
        "fc.bias": (1000,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    # 96 conv + batch-norm units (6 entries each, num_batches_tracked included) and two linear layers
    assert len(state) == 96 * 6 + 4
    assert not any("bias" in k for k in state if k.endswith("conv.bias"))


def test_output_shape_at_299(inception):
    inception.eval()
    with torch.no_grad():
        out = inception(torch.zeros(2, 3, 299, 299))
    assert out.shape == (2, 1000)
    with torch.no_grad():
        small = inception(torch.rand(1, 3, 75, 75))  # the smallest input torchvision allows
    assert small.shape == (1, 1000)
    with pytest.raises(DataError, match="at least 75"):
        inception(torch.zeros(1, 3, 64, 64))
    inception.train()
    try:  # in training the auxiliary head runs, and needs the 17 × 17 grid of a 299 × 299 input
        with pytest.raises(DataError, match="299"):
            inception(torch.rand(2, 3, 160, 160))
    finally:
        inception.eval()


def test_checkpoint_round_trip(inception, tmp_path):
    path = tmp_path / "inception_v3.pth"
    torch.save(inception.state_dict(), path)
    torch.manual_seed(1)
    loaded = load_inception_checkpoint(path)  # a fresh model with other random weights
    for key, tensor in inception.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    # wrapped ({"state_dict": …}) and DataParallel ("module.") checkpoints load as well
    torch.save({"state_dict": {f"module.{k}": v for k, v in inception.state_dict().items()}}, tmp_path / "wrapped.pth")
    wrapped = load_inception_checkpoint(tmp_path / "wrapped.pth")
    assert torch.equal(wrapped.fc.weight, inception.fc.weight)


def test_mismatched_checkpoint_is_refused_in_one_line(inception, tmp_path):
    state = inception.state_dict()
    bad = dict(state)
    bad["Mixed_6b.branch1x1.conv.weight"] = torch.zeros(10, 768, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(DataError) as err:
        load_inception_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "'Mixed_6b.branch1x1.conv.weight'" in message
    missing = {k: v for k, v in state.items() if k != "Mixed_5b.branch1x1.bn.weight"}
    torch.save(missing, path)
    with pytest.raises(DataError, match=r"bad\.pth.*'Mixed_5b\.branch1x1\.bn\.weight' is missing"):
        load_inception_checkpoint(path)
    torch.save({**state, "head.weight": torch.zeros(1)}, path)
    with pytest.raises(DataError, match="unexpected key 'head.weight'"):
        load_inception_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="bad.pth"):
        load_inception_checkpoint(path)
    with pytest.raises(DataError, match="no such"):
        load_inception_checkpoint(tmp_path / "absent.pth")


def test_checkpoint_with_code_is_not_executed(tmp_path):
    """weights_only=True: a pickle that would run code is refused, not run."""
    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": Payload()}, path)
    with pytest.raises(DataError, match="not a weights-only torch checkpoint"):
        load_inception_checkpoint(path)


def test_rgb_composite_equivalence():
    """The 4-channel first convolution on HPA channels equals the RGB one on the colour composite."""
    torch.manual_seed(2)
    rgb = torch.randn(8, 3, 3, 3)
    four = rgb_composite_weights(rgb)
    hpa = torch.rand(2, 4, 20, 20)  # protein, nucleus, microtubules, ER
    protein, nucleus, tubules, er = hpa.unbind(1)
    composite = torch.stack([tubules + er, protein + er, nucleus], 1)  # R, G, B
    assert torch.allclose(torch.nn.functional.conv2d(hpa, four), torch.nn.functional.conv2d(composite, rgb), atol=1e-5)
    with pytest.raises(ParameterError):
        rgb_composite_weights(torch.zeros(8, 4, 3, 3))


def test_adapted_network_trains_one_step(inception):
    torch.manual_seed(3)
    net = InceptionV3()
    net.load_state_dict(inception.state_dict())
    rgb_first = net.Conv2d_1a_3x3.conv.weight.detach().clone()
    kept = net.Mixed_6e.branch_pool.conv.weight.detach().clone()
    adapted = adapt_to_hpa(net, 13, seed=0)
    assert adapted.in_channels == 4 and adapted.num_classes == 13 and adapted.AuxLogits.fc.out_features == 13
    assert torch.equal(adapted.Conv2d_1a_3x3.conv.weight[:, 0], rgb_first[:, 1])  # protein ← green
    assert torch.equal(adapted.Mixed_6e.branch_pool.conv.weight, kept)
    x, y = torch.rand(2, 4, 64, 64), torch.tensor([[1.0] + [0.0] * 12, [0.0, 1.0] + [0.0] * 11])
    full = HPAInception(adapted, input_size=299).train()  # 64 × 64 images resized to 299: the aux head runs
    out = full(x)
    assert isinstance(out, InceptionOutputs) and out.logits.shape == (2, 13) and out.aux_logits.shape == (2, 13)
    model = HPAInception(adapted, input_size=96).train()  # smaller input: no room for the aux head
    assert adapted.AuxLogits is None and model(x).shape == (2, 13)
    loss = inception_step(model, (x, y))["loss"]
    loss.backward()
    assert adapted.fc.weight.grad is not None and adapted.Conv2d_1a_3x3.conv.weight.grad is not None
    model.eval()
    probs = model.predict_proba(x)
    assert probs.shape == (2, 13) and ((probs >= 0) & (probs <= 1)).all()
    with pytest.raises(ParameterError):
        adapt_to_hpa(adapted)  # already 4 channels
    with pytest.raises(ParameterError):
        HPAInception(InceptionV3(), input_size=299)  # a 3-channel network


def _evaluation(y, pred):
    from atlaskit.metrics import multilabel as ml
    from atlaskit.studies.cnnfcn import CLASSES, Evaluation

    y, pred = np.asarray(y, np.uint8), np.asarray(pred, bool)
    return Evaluation("cnn", np.full(13, 0.5), np.zeros(13), y, pred.astype(float), pred,
                      ml.multilabel_confusion(y, pred, CLASSES), None)


def test_transfer_table_and_ledger_row_hand_made():
    from atlaskit.studies import cnnfcn as S

    rng = np.random.default_rng(0)
    y = (rng.random((60, 13)) < 0.2).astype(np.uint8)
    y[:, 0] = 1
    perfect, empty = _evaluation(y, y), _evaluation(y, np.zeros_like(y))
    table = S.transfer_table({"from scratch": empty, "pretrained + fine-tuned": perfect}, n_boot=200)
    dice = table.set_index(["model", "metric"]).loc[("pretrained + fine-tuned", "mean Dice (= macro-F1)")]
    assert dice["ours"] == 1.0 and dice["minus baseline"] == 1.0 and dice["diff low"] == 1.0
    shown = S.transfer_display(table)
    assert shown.loc["exact match", "pretrained + fine-tuned − baseline"].startswith("+1.000")
    assert (shown["paper (Inception-V3, ImageNet)"] == "").all()  # no paper number quoted
    with pytest.raises(ParameterError):
        S.transfer_table({"a": perfect}, baseline="from scratch")
    # the ledger row: its verdict follows the interval, whichever way it points
    evals = {"cnn": empty, "fcn": perfect}
    helps = S.measure_effects(evals, None, n_boot=200, transfer={"scratch": empty, "pretrained": perfect})[-1]
    hurts = S.measure_effects(evals, None, n_boot=200, transfer={"scratch": perfect, "pretrained": empty})[-1]
    assert "pretraining" in helps.effect and helps.verdict == "reproduced" and hurts.verdict == "reversed"
    without = S.measure_effects(evals, None, n_boot=200)
    assert len(without) == 5 and not any("pretraining" in row.effect for row in without)  # the row only when asked


def test_transferred_cnn_carries_the_base_only():
    from atlaskit.models.cnnfcn import CNN, CnnFcnConfig
    from atlaskit.studies import cnnfcn as S

    torch.manual_seed(0)
    small = CnnFcnConfig.scaled(32, 0.125)
    pre = CNN(small)

    class Run:  # the one attribute transferred_cnn reads
        model = pre

    big = S.transferred_cnn(Run, CnnFcnConfig.scaled(64, 0.125))
    for key, tensor in pre.base.state_dict().items():
        assert torch.equal(big.base.state_dict()[key], tensor), key
    assert big.head[0].in_features != pre.head[0].in_features  # a fresh head for the new input size
    with pytest.raises(ParameterError, match="does not fit"):
        S.transferred_cnn(Run, CnnFcnConfig.scaled(64, 0.25))
