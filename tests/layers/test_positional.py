import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from ss4d.layers import AbsolutePositionEmbedder, HybridPositionalEncoding, RotaryEmbedding


def test_absolute_layout_sin_then_cos_per_axis_with_zero_pad():
    emb = AbsolutePositionEmbedder(14, 3)  # freq_dim 2, 12 used, 2 zero pads
    out = emb(torch.tensor([[1, 2, 3]]))[0]
    w = [1.0, 10000 ** (-1 / 2)]
    expected = []
    for c in (1, 2, 3):
        expected += [math.sin(c * f) for f in w] + [math.cos(c * f) for f in w]
    torch.testing.assert_close(out, torch.tensor(expected + [0.0, 0.0]))


def test_rope_rotates_interleaved_pairs():
    rope = RotaryEmbedding(4, 1, base=100.0)  # theta = (1, 100^-1/2)
    x = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])  # [L=1, H=1, d=4]
    out = rope(x, torch.tensor([2]))[0, 0]
    t1, t2 = 2.0, 2.0 * 100**-0.5
    torch.testing.assert_close(out, torch.tensor([math.cos(t1), math.sin(t1), math.cos(t2), math.sin(t2)]))


@given(shift=st.integers(-50, 50), seed=st.integers(0, 1000), base=st.sampled_from([100.0, 10000.0]))
def test_rope_depends_only_on_relative_positions(shift, seed, base):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 6, 3, 16, generator=g, dtype=torch.float64)
    pos = torch.randint(0, 32, (6,), generator=g)
    rope = RotaryEmbedding(16, 1, base=base)
    dots = torch.einsum("ihd,jhd->hij", rope(q, pos), rope(k, pos))
    shifted = torch.einsum("ihd,jhd->hij", rope(q, pos + shift), rope(k, pos + shift))
    torch.testing.assert_close(dots, shifted)


def test_rope_3d_uses_a_third_of_the_pairs_per_axis():
    rope = RotaryEmbedding(12, 3)
    assert rope.freq_dim == 2
    x = torch.randn(5, 2, 12)
    pos = torch.randint(0, 8, (5, 3))
    out = rope(x, pos)
    assert out.shape == x.shape
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))  # a rotation keeps norms


def test_hybrid_encoding_parts():
    enc = HybridPositionalEncoding(64, 16)
    assert enc.embed(torch.zeros(3, 3, dtype=torch.long)).shape == (3, 64)
    q = torch.randn(5, 4, 16)
    torch.testing.assert_close(enc.rotate(q, torch.zeros(5, dtype=torch.long)), q)
