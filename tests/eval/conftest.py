import pytest
import torch

from ss4d.eval.lpips import LPIPS


@pytest.fixture
def weight_files(tmp_path):
    """Random weights in the two on-disk layouts (torchvision VGG16 keys, lpips v0.1 keys)."""
    torch.manual_seed(0)
    net = LPIPS()
    vgg = {f"features.{k}": v.abs() * 0.5 for k, v in net.features.state_dict().items()}
    vgg["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's head: present in the file, ignored
    linear = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(vgg, tmp_path / "vgg16.pth")
    torch.save(linear, tmp_path / "lin.pth")
    return tmp_path / "vgg16.pth", tmp_path / "lin.pth", vgg, linear
