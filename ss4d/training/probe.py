"""Pre-training of a from-scratch condition encoder (the ``condition_encoder`` stage of ``ss4d train``).

SS4D conditions both flows on a *pretrained, frozen* DINOv2. A tiny encoder trained from scratch together
with the structure flow learns to be ignored instead: after 1500 steps of ss4d-tiny's first recipe, the
flow's CFM loss on its training clips with the true condition, a zero condition or another clip's condition
differed by 0.3-4 %, and its samples matched the clip played backwards as well as forwards.
So the tiny encoder is pre-trained on a direct, supervised task and then frozen, as DINOv2 is:

* from one (masked) condition frame, :class:`StructureProbe` predicts the frame's 3D occupancy out of the
  encoder's tokens (learned queries, one per occupancy patch, with absolute 3D positions, cross-attend to
  the tokens; weighted BCE). Occupancy is a better-posed target than the structure VAE's latent: regressing
  the latent with MSE stalled at 64 % of its variance in the same budget in which occupancy reached
  IoU 0.4 on held-out clips;
* a linear head reconstructs each image patch's *unmasked* pixels from its token, so the tokens also keep
  the appearance the SLat flow needs.

The probe is discarded after pre-training; only the encoder goes into the pipeline.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers import AbsolutePositionEmbedder
from ss4d.models.prenorm import PreNormStackConfig, PreNormTransformerLayer
from ss4d.models.structure_flow import unpatchify

__all__ = ["StructureProbe", "StructureProbeConfig", "condition_pretrain_loss", "image_patches"]


@dataclass(frozen=True, kw_only=True)
class StructureProbeConfig(PreNormStackConfig):
    """``channels`` = the encoder's token width; occupancy ``[1, R, R, R]`` at ``resolution`` is read out in
    ``patch``^3 blocks, one query each; ``image_patch`` = the encoder's patch size (pixels per token side)."""

    resolution: int = 16
    patch: int = 4
    image_patch: int = 8

    def validate(self) -> None:
        self.check_divisible("resolution", "patch")
        super().validate()


class StructureProbe(nn.Module):
    """Condition tokens ``[N, L, C]`` -> ``(occupancy logits [N, 1, R, R, R], pixels [N, P, 3 p^2])``.

    ``P`` = the number of image patches: the *last* ``P`` tokens are the patch tokens (registers come first,
    the :class:`~ss4d.models.TinyImageEncoder` layout); pixels are ordered as :func:`image_patches`.
    """

    def __init__(self, config: StructureProbeConfig) -> None:
        super().__init__()
        c = self.config = config
        grid = c.resolution // c.patch
        self.queries = nn.Parameter(torch.zeros(1, grid**3, c.channels))
        self.pos_embedder = AbsolutePositionEmbedder(c.channels, 3)
        self.layers = nn.ModuleList(
            PreNormTransformerLayer(c.channels, c.num_heads, kind="cross") for _ in range(c.num_layers)
        )
        self.occupancy_out = nn.Linear(c.channels, c.patch**3)
        self.pixel_out = nn.Linear(c.channels, 3 * c.image_patch**2)

    def forward(
        self, tokens: Float[Tensor, "n l c"], num_patches: int
    ) -> tuple[Float[Tensor, "n 1 r r r"], Float[Tensor, "n p q"]]:
        c = self.config
        grid = c.resolution // c.patch
        axis = torch.arange(grid, device=tokens.device)
        cells = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        h = (self.queries + self.pos_embedder(cells)).expand(tokens.shape[0], -1, -1)
        for layer in self.layers:
            h = layer(h, tokens)
        logits = unpatchify(self.occupancy_out(h), c.patch, 1, c.resolution)
        return logits, self.pixel_out(tokens[:, -num_patches:])


def image_patches(images: Float[Tensor, "n 3 h w"], patch: int) -> Float[Tensor, "n p q"]:
    """Row-major ``patch`` x ``patch`` tiles of ``images`` (the order of a stride-``patch`` conv's outputs),
    each flattened channel-major: ``[N, (H/p)(W/p), 3 p^2]``."""
    n, ch, H, W = images.shape
    if H % patch or W % patch:
        raise ValueError(f"image size {H}x{W} is not divisible by the patch size {patch}")
    tiles = images.reshape(n, ch, H // patch, patch, W // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(n, (H // patch) * (W // patch), ch * patch * patch)


def condition_pretrain_loss(encoder, probe: StructureProbe, frames: Tensor, clean: Tensor, occupancy: Tensor, *,
                            pixel_weight: float = 1.0, pos_weight: float = 3.0):  # fmt: skip
    """``BCE(occupancy; pos_weight) + pixel_weight * MSE(pixels)`` for ``frames [N, 3, S, S]`` (augmented),
    ``clean`` (the same frames unmasked: the pixel target) and ``occupancy [N, 1, R, R, R]`` in {0, 1}.
    ``pos_weight`` up-weights the occupied voxels (about 1 in 8 at 16^3 for the synthetic clips)."""
    size = encoder.image_size
    if clean.shape[-2:] != (size, size):
        clean = F.interpolate(clean, size=(size, size), mode="area")
    target = image_patches(clean, probe.config.image_patch)
    logits, pixels = probe(encoder(frames), target.shape[1])
    bce = F.binary_cross_entropy_with_logits(
        logits, occupancy, pos_weight=torch.tensor(pos_weight, device=logits.device)
    )
    pixel_loss = (pixels - target).square().mean()
    with torch.no_grad():
        hit, truth = logits > 0, occupancy > 0.5
        iou = ((hit & truth).sum() / (hit | truth).sum().clamp_min(1)).item()
    return bce + pixel_weight * pixel_loss, {
        "bce": float(bce.detach()),
        "pixel": float(pixel_loss.detach()),
        "iou": iou,
    }
