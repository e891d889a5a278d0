"""Evaluation: image metrics and the 4D benchmark on held-out synthetic clips."""

from ss4d.eval.metrics import bbox_crop, flicker, psnr, reported_ssim, ssim, temporal_error, voxel_iou

__all__ = ["bbox_crop", "flicker", "psnr", "reported_ssim", "ssim", "temporal_error", "voxel_iou"]
