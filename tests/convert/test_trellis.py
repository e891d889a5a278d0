"""TRELLIS 3D checkpoints inflate to the 4D models: shared keys 1:1, only CompNet temporal blocks are new."""

import json

import pytest
import torch
from safetensors.torch import load_file

from ss4d.convert import convert_checkpoint, convert_trellis
from ss4d.errors import CheckpointMismatchError
from ss4d.models import SLatFlow4D, StructureFlow4D

from ..layers.official import ROOT


def _trellis_from_ss4d(name: str, trellis_class: str):
    """A TRELLIS-format checkpoint made from the SS4D fixture: the TRELLIS class, minus the *_t keys."""
    ckpt = json.loads((ROOT / name / "config.json").read_text())["checkpoint_json"]
    ss4d_only = ("expand_self_attn", "insert_temporal", "conv_type", "io_block_channels_t", "num_io_res4d_blocks")
    args = {k: v for k, v in ckpt["args"].items() if k not in ss4d_only}
    state = {k: v for k, v in load_file(str(ROOT / name / "model.safetensors")).items() if "_t." not in k}
    return {"name": trellis_class, "args": args}, state


def test_structure_flow_from_trellis_loads_every_key():
    ckpt, state = _trellis_from_ss4d("ssflow4d_win", "SparseStructureFlowModel")
    result = convert_trellis(ckpt, state, window=4)
    assert isinstance(result.model, StructureFlow4D) and not result.new_keys and not result.report
    assert result.model.config.temporal == "expand" and result.model.config.window == 4


def test_slat_flow_from_trellis_adds_only_temporal_blocks():
    ckpt, state = _trellis_from_ss4d("slatflow4d_3d1d", "SLatFlowModel")
    result = convert_trellis(ckpt, state)
    assert isinstance(result.model, SLatFlow4D)
    assert result.new_keys and all(k.startswith(("input_blocks_t.", "out_blocks_t.")) for k in result.new_keys)
    loaded = result.model.state_dict()
    for key, value in state.items():
        if ".conv." not in key:
            assert torch.equal(loaded[key], value), key


def test_trellis_checkpoint_with_foreign_keys_raises():
    ckpt, state = _trellis_from_ss4d("ssflow4d_win", "SparseStructureFlowModel")
    state["blocks.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match="unexpected"):
        convert_trellis(ckpt, state)


def test_convert_checkpoint_writes_a_model_folder(tmp_path):
    src = tmp_path / "ckpts"
    src.mkdir()
    folder = ROOT / "slatvae_enc"
    (src / "enc.json").write_text(json.dumps(json.loads((folder / "config.json").read_text())["checkpoint_json"]))
    (src / "enc.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    result = convert_checkpoint(src / "enc.json", tmp_path / "out")
    reloaded = type(result.model).from_pretrained(tmp_path / "out")
    for k, v in result.model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[k], v)
    with pytest.raises(FileNotFoundError, match="safetensors"):
        convert_checkpoint(src / "missing.json", tmp_path / "x")
