"""FLOP counting (groups-aware convolution backward) and the GEMM throughput probe."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from atlaskit.profiling import count_flops, gemm_throughput


def _conv_forward_flops(conv: nn.Conv2d, x: torch.Tensor) -> int:
    """Hand count: 2 * N * H_out * W_out * C_out * (C_in / groups) * kh * kw."""
    out = conv(x)
    kh, kw = conv.kernel_size
    return 2 * x.shape[0] * out.shape[2] * out.shape[3] * conv.out_channels * (
        conv.in_channels // conv.groups) * kh * kw


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_conv_training_flops_match_hand_count(groups):
    conv = nn.Conv2d(16, 32, 3, padding=1, stride=2, groups=groups)
    x = torch.randn(3, 16, 9, 9, requires_grad=True)
    forward = _conv_forward_flops(conv, x)
    counted = count_flops(lambda: conv(x).sum().backward())
    # forward + input gradient + weight gradient, each the same multiply-adds
    assert counted.by_operator == {"convolution": forward, "convolution_backward": 2 * forward}
    assert counted.total == 3 * forward


def test_depthwise_backward_is_not_over_counted():
    """torch's built-in formula counts the weight gradient with all input channels."""
    conv = nn.Conv2d(32, 32, 3, padding=1, groups=32)
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    ours = count_flops(lambda: conv(x).sum().backward()).total
    with FlopCounterMode(display=False) as builtin:
        conv(x).sum().backward()
    forward = _conv_forward_flops(conv, x)
    assert ours == 3 * forward
    assert builtin.get_total_flops() == 2 * forward + 32 * forward  # weight grad x channels


def test_no_input_gradient_counts_weight_gradient_only():
    conv = nn.Conv2d(4, 8, 3, padding=1)
    x = torch.randn(2, 4, 6, 6)  # an input image: no gradient wanted
    assert count_flops(lambda: conv(x).sum().backward()).total == 2 * _conv_forward_flops(conv, x)


def test_linear_and_module_breakdown():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(5, 10)
    counted = count_flops(lambda: model(x))
    assert counted.total == 2 * 5 * (10 * 20 + 20 * 3)
    assert counted.by_module["Global"] == counted.total
    assert sum(v for k, v in counted.by_module.items() if k.startswith("Sequential.")) == counted.total


def test_gemm_throughput_is_a_positive_rate():
    rate = gemm_throughput(size=64, seconds=0.01)
    assert math.isfinite(rate) and rate > 0
