"""The condition-encoder pre-training probe: layouts, shapes and that it learns."""

import torch
from torch import nn

from ss4d.models import TinyImageEncoder, TinyImageEncoderConfig
from ss4d.training.probe import StructureProbe, StructureProbeConfig, condition_pretrain_loss, image_patches


def test_image_patches_follow_the_patch_embedding_order():
    """Tile k of `image_patches` is what token k of a stride-p conv (the encoder's patch embedding) sees."""
    images = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    conv = nn.Conv2d(3, 5, 4, stride=4)
    tokens = conv(images).flatten(2).transpose(1, 2)  # [N, P, 5]
    tiles = image_patches(images, 4)
    assert tiles.shape == (2, 4 * 6, 3 * 16)
    by_tile = tiles @ conv.weight.reshape(5, -1).T + conv.bias
    torch.testing.assert_close(by_tile, tokens)


def test_probe_shapes_and_the_pretraining_loss_learns():
    torch.manual_seed(0)
    encoder = TinyImageEncoder(TinyImageEncoderConfig(image_size=16, patch_size=4, channels=16, num_layers=1,
                                                      num_heads=2))  # fmt: skip
    probe = StructureProbe(StructureProbeConfig(channels=16, num_heads=2, num_layers=1, resolution=8, patch=4,
                                                image_patch=4))  # fmt: skip
    frames = torch.rand(4, 3, 16, 16)
    occupancy = (torch.rand(4, 1, 8, 8, 8) < 0.2).float()
    logits, pixels = probe(encoder(frames), 16)
    assert logits.shape == (4, 1, 8, 8, 8) and pixels.shape == (4, 16, 48)
    opt = torch.optim.Adam([*encoder.parameters(), *probe.parameters()], lr=3e-3)
    first = None
    for _ in range(30):
        loss, logs = condition_pretrain_loss(encoder, probe, frames, frames, occupancy)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.7 * first and set(logs) == {"bce", "pixel", "iou"}
