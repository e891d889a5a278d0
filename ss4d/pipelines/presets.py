"""Small pipeline presets built from scratch (random weights): the starting point of ``ss4d-tiny``.

``build_tiny_pipeline()`` gives an untrained pipeline that runs end to end on a CPU in seconds: useful to
try the whole job, to test, and to train (``ss4d train``). Its outputs are noise until it is trained.
"""

from pathlib import Path

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
from ss4d.pipelines.pipeline import SamplerParams, SS4DPipeline

__all__ = ["build_tiny_pipeline", "shipped_tiny_path"]

SHIPPED_TINY = Path("checkpoints") / "ss4d-tiny"


def shipped_tiny_path() -> Path:
    """The trained ``ss4d-tiny`` pipeline shipped in the repository (``checkpoints/ss4d-tiny``): the folder
    under the current directory when it exists, else the one next to this source tree.

    Raises:
        FileNotFoundError: neither exists (e.g. a wheel install without the repository's checkpoints).
    """
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        folder = root / SHIPPED_TINY
        if (folder / "model_index.json").is_file():
            return folder
    raise FileNotFoundError(
        f"the shipped {SHIPPED_TINY} was not found (it lives in the ss4d repository, not in wheels): run from a "
        "clone of the repository or pass --model DIR"
    )


def build_tiny_pipeline(
    *,
    seed: int = 0,
    channels: int = 32,
    image_size: int = 32,
    structure_resolution: int = 4,
    num_blocks: int = 2,
    num_gaussians: int = 4,
    steps: int = 2,
) -> SS4DPipeline:
    """An untrained pipeline: structure latents ``8 x r^3``, SLat resolution ``2r``, width ``channels``.

    The structure decoder's output bias starts at +0.3 so that random weights already give voxels.
    """
    torch.manual_seed(seed)
    C, r = channels, structure_resolution
    heads = max(1, C // 16)
    decoder = SparseStructureDecoder(
        SparseStructureVAEConfig(channels=(8, 16), num_res_blocks=1, num_res_blocks_middle=1)
    )
    with torch.no_grad():
        decoder.out_layer[2].bias.fill_(0.3)
    encoder = TinyImageEncoder(
        TinyImageEncoderConfig(image_size=image_size, patch_size=8, channels=C, num_layers=1, num_heads=heads)
    )
    trunk = {"model_channels": C, "num_blocks": num_blocks, "num_heads": heads}  # every transformer's width and depth
    structure_flow = StructureFlow4D(
        StructureFlow4DConfig(resolution=r, cond_channels=C, patch_size=1, window=4, **trunk)
    )
    slat_flow = SLatFlow4D(
        SLatFlow4DConfig(resolution=2 * r, cond_channels=C, io_block_channels=max(8, C // 2), **trunk)
    )
    slat_decoder = GaussianDecoder4D(
        GaussianDecoder4DConfig(resolution=2 * r, window=4, window_xyz=4, num_gaussians=num_gaussians, **trunk)
    )
    return SS4DPipeline(
        condition_encoder=encoder,
        structure_decoder=decoder,
        structure_flow=structure_flow,
        slat_flow=slat_flow,
        slat_decoder=slat_decoder,
        structure_sampler=SamplerParams(num_steps=steps, cfg_strength=2.0),
        slat_sampler=SamplerParams(num_steps=steps, cfg_strength=1.0),
    ).to("cpu")
