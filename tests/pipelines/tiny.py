"""A tiny random-weight SS4D pipeline and a synthetic clip, for fast end-to-end tests."""

import math

import torch

from ss4d.models import (
    GaussianDecoder4D,
    GaussianDecoder4DConfig,
    SLatFlow4D,
    SLatFlow4DConfig,
    SparseStructureDecoder,
    SparseStructureVAEConfig,
    StructureFlow4D,
    StructureFlow4DConfig,
    TinyImageEncoder,
    TinyImageEncoderConfig,
)
from ss4d.pipelines import SamplerParams, SS4DPipeline


def tiny_pipeline(seed: int = 0) -> SS4DPipeline:
    torch.manual_seed(seed)
    C = 32
    decoder = SparseStructureDecoder(
        SparseStructureVAEConfig(channels=(8, 16), num_res_blocks=1, num_res_blocks_middle=1)
    )
    with torch.no_grad():
        decoder.out_layer[2].bias.fill_(0.3)  # random weights: make sure some voxels come out active
    pipe = SS4DPipeline(
        condition_encoder=TinyImageEncoder(TinyImageEncoderConfig(image_size=32, patch_size=8, channels=C, num_layers=1,
                                                                  num_heads=2)),
        structure_decoder=decoder,
        structure_flow=StructureFlow4D(StructureFlow4DConfig(resolution=4, model_channels=C, cond_channels=C,
                                                             num_blocks=2, num_heads=2, patch_size=1, window=4)),
        slat_flow=SLatFlow4D(SLatFlow4DConfig(resolution=8, model_channels=C, cond_channels=C, num_blocks=2,
                                              num_heads=2, io_block_channels=16)),
        slat_decoder=GaussianDecoder4D(GaussianDecoder4DConfig(resolution=8, model_channels=C, num_blocks=2,
                                                               num_heads=2, window=4, window_xyz=4, num_gaussians=4)),
        structure_sampler=SamplerParams(num_steps=2, cfg_strength=2.0),
        slat_sampler=SamplerParams(num_steps=2, cfg_strength=1.0),
    )  # fmt: skip
    return pipe.to("cpu")


def moving_disc_clip(T: int = 8, size: int = 48, alpha: bool = True) -> torch.Tensor:
    """RGBA (or RGB on white) frames of a coloured disc moving left to right."""
    frames = []
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for t in range(T):
        cx = size * (0.3 + 0.4 * t / max(T - 1, 1))
        cy = size * (0.5 + 0.1 * math.sin(t))
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < (size * 0.18) ** 2).float()
        rgb = torch.stack([0.9 * inside, 0.3 + 0.4 * inside * (yy / size), 0.2 * inside])
        if alpha:
            frames.append(torch.cat([rgb, inside[None]]))
        else:
            frames.append(rgb * inside + (1 - inside))
    return torch.stack(frames)
