"""`TemporalLayer`: self-attention across the frames of each sample (docs/design.md, paper Eq. 2).

Tokens of the frames of one sample form one sequence, ``(B T) M C -> B (T M) C``, optionally cut into
windows of ``window`` frames (shifted by ``window // 2`` when ``shift``), or into 4D windows of
``window`` frames x ``window_xyz``^3 voxels for sparse tokens (the SS4D VAE). Queries and keys get a 1D
RoPE on the frame index within the sample. Windows never cross samples; end windows are shorter.

Two ways to use it in a block:

* ``mode="expand"`` (the released SS4D): it *is* the block's self-attention. Parameter names are those of
  the 3D self-attention it replaces (``to_qkv``, ``to_out``, ``q_rms_norm``, ``k_rms_norm``), so 3D
  weights load 1:1 and only the token grouping changes.
* ``mode="insert"``: an extra layer beside per-frame spatial attention, with its own pre-norm (``norm``)
  and a zero-initialised ``to_out``, so inserting it into a 3D model changes no output at init.

In both modes ``forward`` returns the attention *update*; the block adds it (with its gate) to the
residual stream.
"""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers.attention import AttentionCore
from ss4d.layers.norm import LayerNorm32
from ss4d.layers.registry import register_temporal_layer
from ss4d.layers.windows import (
    TokenPartition,
    dense_temporal_partition,
    sparse_spacetime_window_partition,
    sparse_temporal_partition,
)
from ss4d.ops.modes import TemporalLayerMode, check_choice
from ss4d.ops.sparse import SparseTensor

__all__ = ["TemporalLayer"]


@register_temporal_layer("temporal")
class TemporalLayer(AttentionCore):
    """Multi-head self-attention over spacetime windows with temporal RoPE, for dense or sparse tokens.

    Args:
        dim: channels C.
        num_heads: heads H (``C % H == 0``).
        window: frames per window; ``None`` = full attention over all frames of a sample.
        shift: shift windows by ``window // 2`` frames (and ``window_xyz // 2`` voxels).
        window_xyz: with sparse tokens, also window space into ``window_xyz``^3 voxel cubes (4D windows).
        mode: ``"expand"`` (it is the block's self-attention) or ``"insert"`` (pre-norm, zero-init output).
        rope_base: base of the temporal RoPE; ``use_rope=False`` disables it (frame-permutation invariant).
        qk_rms_norm: per-head RMS norm of q, k (after RoPE).
        attn_backend: attention backend name or ``"auto"``.

    Input/output: dense ``[B, T, M, C]`` (M tokens per frame) or a :class:`SparseTensor` ``[n, C]``
    whose layout gives T.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        window: int | None = None,
        shift: bool = False,
        window_xyz: int | None = None,
        mode: TemporalLayerMode = "expand",
        rope_base: float = 10000.0,
        use_rope: bool = True,
        qk_rms_norm: bool = False,
        qkv_bias: bool = True,
        attn_backend: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        if window is not None and window < 1:
            raise ValueError(f"`window` must be >= 1 or None, got {window}")
        if window_xyz is not None and window_xyz < 1:
            raise ValueError(f"`window_xyz` must be >= 1 or None, got {window_xyz}")
        if shift and window is None and window_xyz is None:
            raise ValueError("`shift=True` needs a `window` (frames) or a `window_xyz` (voxels)")
        check_choice(mode, TemporalLayerMode, "mode")
        dd = {"device": device, "dtype": dtype}
        super().__init__(
            dim,
            num_heads,
            kind="self",
            qkv_bias=qkv_bias,
            qk_rms_norm=qk_rms_norm,
            rope_base=rope_base,
            attn_backend=attn_backend,
            **dd,
        )
        self.window, self.shift, self.window_xyz, self.mode, self.use_rope = window, shift, window_xyz, mode, use_rope
        if mode == "insert":
            self.norm = LayerNorm32(dim, eps=1e-6, **dd)
            self.zero_output_()

    def zero_output_(self) -> None:
        """Zero ``to_out``: the layer's update is 0, so inserting it changes no output (``mode="insert"``)."""
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    @property
    def frame_shift(self) -> int:
        return self.window // 2 if self.shift and self.window else 0

    @property
    def voxel_shift(self) -> int:
        return self.window_xyz // 2 if self.shift and self.window_xyz else 0

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, window={self.window}, shift={self.shift}, window_xyz={self.window_xyz}"

    def forward(self, x: Float[Tensor, "b t m c"] | SparseTensor) -> Float[Tensor, "b t m c"] | SparseTensor:
        if isinstance(x, SparseTensor):
            return x.replace(self._sparse(self.norm(x.feats) if self.mode == "insert" else x.feats, x))
        if x.ndim != 4:
            raise ValueError(f"dense input must be [B, T, M, C], got {tuple(x.shape)}")
        return self._dense(self.norm(x) if self.mode == "insert" else x)

    def _dense(self, x: Tensor) -> Tensor:
        B, T, M, C = x.shape
        positions = torch.arange(T, device=x.device)[:, None] if self.use_rope else None  # [T, 1]: per frame
        q, k, v = self.project_self(x, positions)  # [B, T, M, H, d]
        partition = dense_temporal_partition(B, T, M, self.window, self.frame_shift, x.device)
        out = self.attend_packed(q.flatten(0, 2), k.flatten(0, 2), v.flatten(0, 2), partition)
        return out.view(B, T, M, C)

    def partition(self, x: SparseTensor) -> TokenPartition:
        """The sequences this layer attends within, for sparse ``x``."""
        if self.window_xyz is None:
            return sparse_temporal_partition(x, self.window, self.frame_shift)
        window = self.window if self.window is not None else x.layout.num_frames
        return sparse_spacetime_window_partition(x, window, self.window_xyz, self.frame_shift, self.voxel_shift)

    def _sparse(self, feats: Tensor, x: SparseTensor) -> Tensor:
        positions = x.frame_index if self.use_rope else None
        q, k, v = self.project_self(feats, positions)  # [n, H, d]
        return self.attend_packed(q, k, v, self.partition(x))
