import inspect
import math

import pytest
import torch
from torch import nn

from ss4d.errors import FrameCountError
from ss4d.layers import (
    FactorizedSparseConv4d,
    ModulatedSparseTransformerCrossBlock,
    ModulatedTransformerCrossBlock,
    OfficialInsertTemporalCrossBlock,
    SpacetimeDownsample,
    SpacetimeUpsample,
    SparseConv4d,
    SparseResBlock,
    SparseTemporalConv1d,
    SparseTransformerBlock,
    TemporalLayer,
    TemporalPack,
    TemporalUnpack,
    TimestepEmbedder,
)
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

from ..ops.sparse.helpers import random_sparse

C, CC, H = 32, 16, 4


def _dense_inputs(B=2, T=3, M=5, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, T, M, C, generator=g),
        torch.randn(B, T, C, generator=g),
        torch.randn(B, T, L, CC, generator=g),
    )


def _sparse_inputs(T=4, seed=0):
    x = random_sparse(seed, batch_size=2, num_frames=T, shape=(5, 5, 5), density=0.2, channels=C)
    g = torch.Generator().manual_seed(seed)
    E = x.layout.num_entries
    return x, torch.randn(E, C, generator=g), torch.randn(E, 4, CC, generator=g)


def test_timestep_embedding_is_cos_first():
    emb = TimestepEmbedder(8, frequency_size=4)
    s = emb.sinusoid(torch.tensor([2.0]))[0]
    f1 = math.exp(-math.log(10000) / 2)
    torch.testing.assert_close(s, torch.tensor([math.cos(2.0), math.cos(2 * f1), math.sin(2.0), math.sin(2 * f1)]))


def test_adaln_zero_gates_start_closed():
    block = ModulatedTransformerCrossBlock(C, CC, num_heads=H)
    assert torch.count_nonzero(block.adaLN_modulation[1].weight) == 0
    x, emb, cond = _dense_inputs()
    expected = x + block.cross_attn(block.norm2(x).flatten(0, 1), cond.flatten(0, 1)).view_as(x)
    torch.testing.assert_close(block(x, emb, cond), expected)


def test_dense_insert_block_at_init_equals_3d_block_per_frame():
    torch.manual_seed(0)
    inserted = ModulatedTransformerCrossBlock(
        C, CC, num_heads=H, temporal="insert", window=2, shift=True, adaln_zero=False
    )
    plain = ModulatedTransformerCrossBlock(C, CC, num_heads=H, temporal="none")
    missing, unexpected = plain.load_state_dict(inserted.state_dict(), strict=False)
    assert not missing and all(k.startswith("temporal_attn.") for k in unexpected)
    x, emb, cond = _dense_inputs()
    with torch.no_grad():
        per_frame = torch.stack(
            [plain(x[:, t : t + 1], emb[:, t : t + 1], cond[:, t : t + 1])[:, 0] for t in range(3)], 1
        )
        torch.testing.assert_close(inserted(x, emb, cond), per_frame)


def test_sparse_insert_block_at_init_equals_3d_block():
    torch.manual_seed(0)
    inserted = ModulatedSparseTransformerCrossBlock(C, CC, num_heads=H, temporal="insert", adaln_zero=False)
    plain = ModulatedSparseTransformerCrossBlock(C, CC, num_heads=H, temporal="none")
    plain.load_state_dict(inserted.state_dict(), strict=False)
    x, emb, cond = _sparse_inputs()
    with torch.no_grad():
        torch.testing.assert_close(inserted(x, emb, cond).feats, plain(x, emb, cond).feats)
        frame = x.frame(1)
        E = x.layout.num_entries
        rows = torch.arange(1, E, 4)  # entries of frame 1 in both samples
        alone = plain(frame, emb[rows], cond[rows]).feats
        torch.testing.assert_close(plain(x, emb, cond).frame(1).feats, alone)


def test_expand_block_mixes_frames_and_none_does_not():
    torch.manual_seed(0)
    x, emb, cond = _dense_inputs(B=1)
    y = x.clone()
    y[:, 2] += torch.randn(y[:, 2].shape)  # not a constant: LayerNorm would remove that
    for temporal, mixes in (("expand", True), ("none", False)):
        block = ModulatedTransformerCrossBlock(C, CC, num_heads=H, temporal=temporal, adaln_zero=False)
        with torch.no_grad():
            diff = (block(x, emb, cond)[:, 0] - block(y, emb, cond)[:, 0]).abs().max()
        assert bool(diff > 1e-6) == mixes


def test_checkpointing_gives_the_same_values_and_gradients():
    torch.manual_seed(0)
    block = ModulatedTransformerCrossBlock(C, CC, num_heads=H, window=2, shift=True, qk_rms_norm=True, adaln_zero=False)
    x, emb, cond = _dense_inputs()
    block.train()
    out = block(x, emb, cond)
    out.square().sum().backward()
    grads = {k: p.grad.clone() for k, p in block.named_parameters()}
    block.zero_grad()
    block.use_checkpoint = True
    out2 = block(x, emb, cond)
    out2.square().sum().backward()
    torch.testing.assert_close(out2, out)
    for k, p in block.named_parameters():
        torch.testing.assert_close(p.grad, grads[k], msg=k)


def test_shared_modulation_takes_6c_embeddings():
    block = ModulatedTransformerCrossBlock(C, CC, num_heads=H, share_mod=True)
    assert not any(k.startswith("adaLN") for k in block.state_dict())
    x, _, cond = _dense_inputs()
    assert block(x, torch.zeros(2, 3, 6 * C), cond).shape == x.shape


def test_one_optimizer_step_changes_every_parameter():
    torch.manual_seed(0)
    blocks = [
        (
            ModulatedSparseTransformerCrossBlock(
                C, CC, num_heads=H, qk_rms_norm=True, qk_rms_norm_cross=True, adaln_zero=False
            ),
            True,
        ),
        (SparseTransformerBlock(C, num_heads=H, window=2, window_xyz=2, shift=True), False),
    ]
    x, emb, cond = _sparse_inputs()
    for block, modulated in blocks:
        before = {k: v.clone() for k, v in block.state_dict().items()}
        opt = torch.optim.SGD(block.parameters(), lr=0.1)
        out = block(x, emb, cond) if modulated else block(x)
        out.feats.square().mean().backward()
        opt.step()
        for k, v in block.state_dict().items():
            assert not torch.equal(v, before[k]), k


def test_res_block_is_identity_plus_skip_at_init():
    x, emb, _ = _sparse_inputs()
    same = SparseResBlock(C, C, C, conv=SparseConv4d)
    torch.testing.assert_close(same(x, emb).feats, x.feats)
    wider = SparseResBlock(C, C, 2 * C, conv=SparseTemporalConv1d)
    torch.testing.assert_close(wider(x, emb).feats, wider.skip_connection(x.feats))
    factorized = SparseResBlock(C, C, C, conv=FactorizedSparseConv4d)  # zero temporal conv, live spatial conv
    torch.testing.assert_close(factorized(x, emb).feats, x.feats)
    assert factorized.conv2.spatial.weight.abs().sum() > 0 and not factorized.conv2.temporal.weight.any()


def test_res_block_resampling_round_trip_and_errors():
    x, emb, _ = _sparse_inputs(T=4)
    down = SparseResBlock(C, C, C, conv=SparseTemporalConv1d, resample=TemporalPack())
    up = SparseResBlock(C, C, C, conv=SparseTemporalConv1d, resample=TemporalUnpack())
    packed, pmap = down(x, emb)  # emb has 2x the packed entries: averaged over frame pairs
    assert packed.layout == SpacetimeLayout(2, 2)
    assert up(packed, emb, pmap).same_sites(x)
    with pytest.raises(ValueError, match="pool_map"):
        up(packed, emb)
    with pytest.raises(ValueError, match="rows"):
        SparseResBlock(C, C, C)(x, emb[:3])
    odd = random_sparse(0, num_frames=3, shape=(4, 4, 4), density=0.3, channels=C)
    with pytest.raises(FrameCountError, match="even"):
        down(odd, torch.zeros(3, C))
    with pytest.raises(ValueError, match="down- or up-sampling module"):
        SparseResBlock(C, C, C, resample=nn.Identity())


def test_res_block_spacetime_resampling_round_trip():
    x, emb, _ = _sparse_inputs(T=4)
    down = SparseResBlock(C, C, C, conv=FactorizedSparseConv4d, resample=SpacetimeDownsample())
    up = SparseResBlock(C, C, C, conv=FactorizedSparseConv4d, resample=SpacetimeUpsample())
    packed, maps = down(x, emb)
    assert packed.layout == SpacetimeLayout(2, 2) and len(maps) == 2
    assert up(packed, emb, maps).same_sites(x)


def test_sparse_cross_attention_needs_one_context_per_entry():
    block = ModulatedSparseTransformerCrossBlock(C, CC, num_heads=H)
    x, emb, cond = _sparse_inputs()
    with pytest.raises(ValueError, match="one per b\\*T"):
        block.cross_attn(x, cond[:2])
    assert isinstance(block(x, emb, cond), SparseTensor)


def test_official_insert_temp_attn_takes_the_block_arguments():
    def defaults(f):
        return {k: p.default for k, p in inspect.signature(f).parameters.items()}

    block, layer = defaults(ModulatedTransformerCrossBlock.__init__), defaults(TemporalLayer.__init__)
    for name in ("use_rope", "qk_rms_norm", "attn_backend", "device", "dtype"):  # left out -> the same value
        assert block[name] == layer[name], name
    for kw in ({}, {"use_rope": False, "qk_rms_norm": True, "attn_backend": "naive", "dtype": torch.float64}):
        b = OfficialInsertTemporalCrossBlock(C, CC, num_heads=H, rope_base=500.0, window=None, **kw)
        t = b.temp_attn
        assert (t.num_heads, t.window, t.shift, t.mode, t.rope.base) == (H, None, False, "expand", 10000.0)
        assert (t.use_rope, t.qk_rms_norm, t.attn_backend) == (
            kw.get("use_rope", True),
            kw.get("qk_rms_norm", False),
            kw.get("attn_backend", "auto"),
        )
        dtype = kw.get("dtype", torch.get_default_dtype())
        assert t.to_qkv.weight.dtype == b.adaLN_modulation_temporal[1].weight.dtype == dtype
    with pytest.raises(ValueError, match="share_mod"):
        OfficialInsertTemporalCrossBlock(C, CC, num_heads=H, share_mod=True)
