import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from ss4d.errors import BackendUnavailableError, UnknownBackendError
from ss4d.ops.attention import attention, attention_backends, seqlens_to_cu, varlen_attention

BACKENDS = [
    pytest.param(
        n,
        marks=pytest.mark.skipif(
            n not in attention_backends.available("cpu"),
            reason=f"{n}: {attention_backends.get(n).unavailable_reason(torch.device('cpu'))}",
        ),
    )
    for n in attention_backends.names()  # every registered backend, so a new one cannot escape
]


def _naive(q, k, v):
    w = (q.double() @ k.double().transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)
    return (w @ v.double()).float()


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    b=st.integers(1, 3),
    h=st.integers(1, 4),
    lq=st.integers(1, 40),
    lk=st.integers(1, 40),
    d=st.sampled_from([8, 16, 64]),
    seed=st.integers(0, 100),
)
def test_dense_matches_reference(backend, b, h, lq, lk, d, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for n in (lq, lk, lk))
    torch.testing.assert_close(attention(q, k, v, backend=backend), _naive(q, k, v), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    lens_q=st.lists(st.integers(0, 30), min_size=1, max_size=7),
    extra_k=st.lists(st.integers(-5, 12), min_size=7, max_size=7),
    cross=st.booleans(),
    seed=st.integers(0, 100),
)
def test_varlen_equals_per_sequence_dense(backend, lens_q, extra_k, cross, seed):
    lens_k = [max(1, lq + e) for lq, e in zip(lens_q, extra_k, strict=False)] if cross else lens_q
    if not cross and 0 in lens_q:
        lens_k = lens_q
    g = torch.Generator().manual_seed(seed)
    H, D = 2, 16
    q = torch.randn(sum(lens_q), H, D, generator=g)
    k = torch.randn(sum(lens_k), H, D, generator=g)
    v = torch.randn(sum(lens_k), H, D, generator=g)
    out = varlen_attention(q, k, v, seqlens_to_cu(lens_q), seqlens_to_cu(lens_k), backend=backend)
    rq = rk = 0
    for lq, lk in zip(lens_q, lens_k, strict=True):
        if lq and lk:
            ref = _naive(*(t.transpose(0, 1)[None] for t in (q[rq : rq + lq], k[rk : rk + lk], v[rk : rk + lk])))
            torch.testing.assert_close(out[rq : rq + lq], ref[0].transpose(0, 1), rtol=1e-4, atol=1e-5)
        rq, rk = rq + lq, rk + lk


def test_varlen_validates_offsets():
    q = torch.randn(10, 2, 8)
    with pytest.raises(ValueError, match="rise from 0 to 10"):
        varlen_attention(q, q, q, torch.tensor([0, 4, 9], dtype=torch.int32))
    with pytest.raises((ValueError, TypeCheckError), match=r"\[N, H, D\]|q"):
        varlen_attention(q[None], q, q, torch.tensor([0, 10], dtype=torch.int32))


def test_backend_errors():
    q = torch.randn(1, 1, 4, 8)
    with pytest.raises(UnknownBackendError, match="known"):
        attention(q, q, q, backend="flash")
    if "flash_attn" not in attention_backends.available("cpu"):
        with pytest.raises(BackendUnavailableError, match="CUDA"):
            attention(q, q, q, backend="flash_attn")


def test_auto_is_sdpa_on_cpu():
    assert attention_backends.resolve("auto", "cpu").name == "sdpa"


def test_auto_reads_the_registered_priorities():
    assert attention_backends.priority("cuda") == ["flash_attn", "xformers", "sdpa"]
    assert attention_backends.priority("cpu") == ["sdpa"]  # naive: by name only
    assert attention_backends.resolve("auto", "cpu").name == "sdpa"
    assert attention_backends.resolve("auto", "meta").name == "sdpa"  # no priority there: the fallback
