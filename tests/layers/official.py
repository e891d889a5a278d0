"""Loading the copied official fixtures (tests/fixtures/official) into ss4d modules."""

import ast
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, weight_from_spconv

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "official"


class Fixture:
    def __init__(self, name: str) -> None:
        folder = ROOT / name
        self.weights = load_file(str(folder / "model.safetensors"))
        self.tensors = load_file(str(folder / "T4.safetensors"))
        self.meta = json.loads((folder / "T4.json").read_text())
        self.num_frames = self.meta["num_frames"]

    def attention_seqlens(self) -> list[dict]:
        calls = self.meta["attention_calls"]
        return ast.literal_eval(calls) if isinstance(calls, str) else calls

    def sparse(self, name: str, num_frames: int | None = None, shape: int = 64) -> SparseTensor:
        T = num_frames or self.num_frames
        coords = self.tensors[f"{name}.coords"]
        return SparseTensor(self.tensors[f"{name}.feats"], coords, SpacetimeLayout(1, T), spatial_shape=(shape,) * 3)

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        """The official weights under ``prefix`` with ss4d names (spconv conv weights -> ss4d layout)."""
        out = {}
        for key, value in self.weights.items():
            if not key.startswith(prefix):
                continue
            key = key[len(prefix) :]
            if ".conv.weight" in key:
                key, value = key.replace(".conv.weight", ".weight"), weight_from_spconv(value)
            elif ".conv.bias" in key:
                key = key.replace(".conv.bias", ".bias")
            out[key] = value
        return out


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise AssertionError(f"missing {missing}, unexpected {unexpected}")
    return module.eval()
