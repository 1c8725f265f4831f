"""FLOP counting (groups-aware convolution backward), memory-traffic counting, and the GEMM and
bandwidth probes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from atlaskit.profiling import count_flops, count_memory_traffic, gemm_throughput, memory_bandwidth


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


def test_memory_traffic_of_an_addition_is_two_reads_and_a_write():
    a, b = torch.ones(1000), torch.ones(1000)
    traffic = count_memory_traffic(lambda: a + b)
    assert traffic.total == 3 * 1000 * 4
    assert traffic.by_operator == {"add": 12000} and traffic.operators == 1


def test_memory_traffic_skips_views_and_counts_dtypes():
    a = torch.ones(10, 20, dtype=torch.float64)
    # view() and t() move nothing; the copy reads 1600 bytes and writes 1600
    traffic = count_memory_traffic(lambda: a.view(20, 10).t().clone())
    assert traffic.by_operator == {"clone": 2 * 200 * 8}
    assert traffic.operators == 1
    # reshaping a transposed tensor is a copy, and counted as one
    assert count_memory_traffic(lambda: a.t().reshape(200)).total == 2 * 200 * 8


def test_memory_traffic_of_a_linear_layer_by_hand():
    lin = nn.Linear(8, 4, bias=False)
    x = torch.ones(5, 8)
    with torch.no_grad():
        traffic = count_memory_traffic(lambda: lin(x))
    # the weight's transpose is a view; mm reads x (5x8) and W (4x8), writes 5x4
    assert traffic.total == 4 * (5 * 8 + 4 * 8 + 5 * 4)


def test_memory_bandwidth_is_a_positive_rate():
    rate = memory_bandwidth(megabytes=4, seconds=0.01)
    assert math.isfinite(rate) and rate > 0
