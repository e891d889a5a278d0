"""The Gaussian activations, against their formulas written out (TRELLIS' ``get_scaling``)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from ss4d.errors import ConfigError
from ss4d.representations import SCALING_ACTIVATIONS, GaussianActivation, Gaussians


def _reference_scaling(raw: torch.Tensor, act: GaussianActivation) -> torch.Tensor:
    """scale = sqrt(f(raw + f^-1(bias))^2 + filter^2), f = exp or softplus, in float64."""
    raw, b = raw.double(), act.scaling_bias
    if act.scaling_activation == "exp":
        s = torch.exp(raw + math.log(b))
    else:
        s = torch.log1p(torch.exp(raw + b + math.log(-math.expm1(-b))))
    return (s**2 + act.filter_3d**2).sqrt()


def _frame(raw_scaling: torch.Tensor, act: GaussianActivation) -> Gaussians:
    n = raw_scaling.shape[0]
    return Gaussians(torch.rand(n, 3), torch.zeros(n, 1, 3), raw_scaling, torch.zeros(n, 4), torch.zeros(n, 1), act)


@pytest.mark.parametrize("kind", SCALING_ACTIVATIONS)
def test_scaling_matches_the_formula(kind):
    act = GaussianActivation(scaling_bias=0.01, filter_3d=1e-3, scaling_activation=kind)
    raw = torch.linspace(-6, 3, 101)[:, None].expand(101, 3).contiguous()
    got = _frame(raw, act).scaling
    torch.testing.assert_close(got.double(), _reference_scaling(raw, act), rtol=1e-5, atol=1e-8)
    # a zero raw scale is the bias (filtered)
    torch.testing.assert_close(act.activate_scaling(torch.zeros(1)).double(),
                               torch.tensor([math.hypot(0.01, 1e-3)], dtype=torch.float64))  # fmt: skip


def test_the_two_activations_differ():
    raw = torch.full((4, 3), 8.0)
    soft = _frame(raw, GaussianActivation()).scaling
    exp = _frame(raw, GaussianActivation(scaling_activation="exp")).scaling
    assert (exp > 4 * soft).all()  # exp(8) * 0.004 = 11.9 against softplus(8 - 5.52) = 2.56


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(SCALING_ACTIVATIONS), raw=st.floats(-8, 4), bias=st.floats(1e-4, 0.5))
def test_raw_scaling_inverts_activate_scaling(kind, raw, bias):
    act = GaussianActivation(scaling_bias=bias, scaling_activation=kind)
    x = torch.tensor([raw], dtype=torch.float64)
    scale = act.activate_scaling(x)
    if scale.item() > 1.01 * act.filter_3d:  # below that the 3D filter hides the raw value
        torch.testing.assert_close(act.raw_scaling(scale), x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(scaling_activation="relu"), dict(scaling_bias=0.0),
                                    dict(scaling_bias=float("nan")), dict(opacity_bias=1.0)])  # fmt: skip
def test_bad_activations_are_refused(kwargs):
    with pytest.raises((ConfigError, TypeCheckError), match="scaling|opacity"):  # beartype checks the Literal in tests
        GaussianActivation(**kwargs)
