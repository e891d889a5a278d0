"""Evaluation: image metrics and the 4D benchmark on held-out synthetic clips."""

from ss4d.eval.metrics import bbox_crop, flicker, psnr, ssim, voxel_iou

__all__ = ["bbox_crop", "flicker", "psnr", "ssim", "voxel_iou"]
