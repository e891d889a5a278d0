"""Data: reading clips (video files, frame folders, images, tensors)."""

from ss4d.data.video import Clip, load_clip, write_video

__all__ = ["Clip", "load_clip", "write_video"]
