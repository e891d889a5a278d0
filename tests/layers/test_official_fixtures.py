"""Our blocks, given the official weights, reproduce the official module outputs (<= 1e-5)."""

import pytest
import torch

from ss4d.layers import (
    AbsolutePositionEmbedder,
    ModulatedSparseTransformerCrossBlock,
    ModulatedTransformerCrossBlock,
    SparseConv3d,
    SparseResBlock,
    SparseTemporalConv1d,
    SparseTransformerBlock,
    SpatialDownsample,
    TemporalLayer,
    TemporalPack,
    TemporalUnpack,
    TimestepEmbedder,
    dense_temporal_partition,
)
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, temporal_downsample

from .official import Fixture, load_strict

ATOL = 1e-5


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def _capture(module: torch.nn.Module, store: dict, name: str):
    def hook(_m, _inp, out):
        store[name] = out

    return module.register_forward_hook(hook)


@pytest.fixture(scope="module")
def ssflow():
    return Fixture("ssflow4d_win")


@pytest.fixture(scope="module")
def slatvae():
    return Fixture("slatvae_enc")


@pytest.fixture(scope="module")
def slatflow():
    return Fixture("slatflow4d_3d1d")


class TestStructureFlowBlocks:
    """Dense 4D DiT blocks, windows of 4 frames, shift 0 then 2 (official window_size=4)."""

    def test_timestep_embedder(self, ssflow):
        emb = load_strict(TimestepEmbedder(64), ssflow.state("t_embedder."))
        _close(emb(ssflow.tensors["in.t"]), ssflow.tensors["mid.t_embedder"])

    def test_absolute_position_embedding(self, ssflow):
        grid = torch.stack(torch.meshgrid(*[torch.arange(4)] * 3, indexing="ij"), dim=-1).reshape(-1, 3)
        _close(AbsolutePositionEmbedder(64)(grid), ssflow.weights["pos_emb"])

    def test_window_partitions(self, ssflow):
        calls = [c for c in ssflow.attention_seqlens() if "q_seqlens" in c]
        for block, call in enumerate(calls):
            part = dense_temporal_partition(1, 4, 64, window=4, shift=2 * (block % 2), device=torch.device("cpu"))
            assert part.seqlens == call["q_seqlens"]

    @pytest.mark.parametrize("block", [0, 1])
    def test_blocks(self, ssflow, block):
        T = ssflow.num_frames
        tensors = ssflow.tensors
        if block == 0:
            x = tensors["mid.input_layer"] + ssflow.weights["pos_emb"]
        else:
            x = tensors[f"mid.blocks.{block - 1}"]
        module = ModulatedTransformerCrossBlock(64, 32, num_heads=4, temporal="expand", window=4, shift=block % 2 == 1)
        load_strict(module, ssflow.state(f"blocks.{block}."))
        seen: dict = {}
        handle = _capture(module.self_attn, seen, "self_attn")
        with torch.no_grad():
            out = module(
                x.view(1, T, 64, 64), tensors["mid.t_embedder"].view(1, T, 64), tensors["in.cond"].view(1, T, 6, 32)
            )
        handle.remove()
        _close(seen["self_attn"].reshape(T, 64, 64), tensors[f"mid.blocks.{block}.self_attn"])
        _close(out.reshape(T, 64, 64), tensors[f"mid.blocks.{block}"])


class TestSLatVAEBlocks:
    """Sparse blocks with 4D windows (4 frames x 4^3 voxels), shift 0 then 2, temporal RoPE."""

    def _input(self, fx):
        h = fx.sparse("mid.input_layer", shape=16)
        return h + AbsolutePositionEmbedder(64)(h.xyz)

    def test_window_partitions(self, slatvae):
        x = self._input(slatvae)
        for block, call in enumerate(slatvae.attention_seqlens()):
            layer = TemporalLayer(64, num_heads=4, window=4, window_xyz=4, shift=block % 2 == 1)
            assert layer.partition(x).seqlens == call["q_seqlens"]

    @pytest.mark.parametrize("block", [0, 1])
    def test_blocks(self, slatvae, block):
        x = self._input(slatvae) if block == 0 else slatvae.sparse(f"mid.blocks.{block - 1}", shape=16)
        module = SparseTransformerBlock(64, num_heads=4, window=4, window_xyz=4, shift=block % 2 == 1)
        load_strict(module, slatvae.state(f"blocks.{block}."))
        seen: dict = {}
        handle = _capture(module.attn, seen, "attn")
        with torch.no_grad():
            out = module(x)
        handle.remove()
        _close(seen["attn"].feats, slatvae.tensors[f"mid.blocks.{block}.attn.feats"])
        _close(out.feats, slatvae.tensors[f"mid.blocks.{block}.feats"])
        assert torch.equal(out.coords, slatvae.tensors[f"mid.blocks.{block}.coords"])


class TestSLatFlowBlocks:
    """CompNet res blocks (official sum/(n+1) pooling) and the full-spacetime sparse DiT blocks."""

    def _emb(self, fx):
        return fx.tensors["mid.t_embedder"]

    def test_spatial_res_blocks(self, slatflow):
        emb = self._emb(slatflow)
        x = slatflow.sparse("mid.input_layer", shape=16)
        b0 = load_strict(SparseResBlock(32, 64, 32, conv=SparseConv3d), slatflow.state("input_blocks.0."))
        b1 = load_strict(
            SparseResBlock(32, 64, 64, conv=SparseConv3d, resample=SpatialDownsample(pooling="official")),
            slatflow.state("input_blocks.1."),
        )
        with torch.no_grad():
            h0 = b0(x, emb)
            h1, _ = b1(h0, emb)
        _close(h0.feats, slatflow.tensors["mid.input_blocks.0.feats"])
        assert torch.equal(h1.coords, slatflow.tensors["mid.input_blocks.1.coords"])
        _close(h1.feats, slatflow.tensors["mid.input_blocks.1.feats"])

    def test_temporal_res_blocks_and_upsample(self, slatflow):
        emb = self._emb(slatflow)
        x = slatflow.sparse("mid.input_blocks.1", shape=8)
        t0 = load_strict(SparseResBlock(64, 64, 64, conv=SparseTemporalConv1d), slatflow.state("input_blocks_t.0."))
        t1 = load_strict(
            SparseResBlock(64, 64, 64, conv=SparseTemporalConv1d, resample=TemporalPack(pooling="official")),
            slatflow.state("input_blocks_t.1."),
        )
        up = load_strict(
            SparseResBlock(128, 64, 64, conv=SparseTemporalConv1d, resample=TemporalUnpack()),
            slatflow.state("out_blocks_t.0."),
        )
        with torch.no_grad():
            h0 = t0(x, emb)
            h1, tmap = t1(h0, emb)
            # out_blocks_t.0 sees cat(transformer output, skip) on the compressed sites, then unpacks
            h = slatflow.sparse("mid.blocks.1", num_frames=2, shape=8)
            cat = h.replace(torch.cat([h.feats, h1.feats], dim=1))
            o0 = up(cat, emb, tmap)
        _close(h0.feats, slatflow.tensors["mid.input_blocks_t.0.feats"])
        assert torch.equal(h1.coords, slatflow.tensors["mid.input_blocks_t.1.coords"])
        assert h1.layout == SpacetimeLayout(1, 2)
        _close(h1.feats, slatflow.tensors["mid.input_blocks_t.1.feats"])
        _close(o0.feats, slatflow.tensors["mid.out_blocks_t.0.feats"])

    def test_attention_partitions(self, slatflow):
        x = slatflow.sparse("mid.input_blocks_t.1", num_frames=2, shape=8)
        calls = slatflow.attention_seqlens()
        assert TemporalLayer(64, num_heads=4).partition(x).seqlens == calls[0]["q_seqlens"]
        assert x.sites.entry_offsets().diff().tolist() == calls[1]["q_seqlens"]

    @pytest.mark.parametrize("block", [0, 1])
    def test_blocks(self, slatflow, block):
        T = slatflow.num_frames
        if block == 0:
            h = slatflow.sparse("mid.input_blocks_t.1", num_frames=T // 2, shape=8)
            h = h + AbsolutePositionEmbedder(64)(h.xyz)
        else:
            h = slatflow.sparse(f"mid.blocks.{block - 1}", num_frames=T // 2, shape=8)
        emb = self._emb(slatflow).view(T // 2, 2, 64).mean(1)
        cond = slatflow.tensors["in.cond"].reshape(T // 2, 12, 32)  # frames (2k, 2k+1) concatenated
        module = ModulatedSparseTransformerCrossBlock(64, 32, num_heads=4, temporal="expand")
        load_strict(module, slatflow.state(f"blocks.{block}."))
        seen: dict = {}
        handle = _capture(module.self_attn, seen, "self_attn")
        with torch.no_grad():
            out = module(h, emb, cond)
        handle.remove()
        _close(seen["self_attn"].feats, slatflow.tensors[f"mid.blocks.{block}.self_attn.feats"])
        _close(out.feats, slatflow.tensors[f"mid.blocks.{block}.feats"])


def test_temporal_downsample_official_pooling_matches(slatflow):
    """The pooling alone: input_blocks_t.1 pools before its conv; check coords and order."""
    x = slatflow.sparse("mid.input_blocks_t.0", shape=8)
    packed, _ = temporal_downsample(x, pooling="official")
    assert torch.equal(packed.coords, slatflow.tensors["mid.input_blocks_t.1.coords"])
    assert isinstance(packed, SparseTensor)
