"""How the batch entries of a sparse or dense spacetime tensor map to (sample, frame)."""

from dataclasses import dataclass

from ss4d.errors import FrameCountError

__all__ = ["SpacetimeLayout"]


@dataclass(frozen=True)
class SpacetimeLayout:
    """``batch_size`` samples of ``num_frames`` frames each; entry ``e = b * num_frames + t``.

    A plain 3D tensor is the layout with ``num_frames == 1``; a stack of frames of one object is
    ``SpacetimeLayout(1, T)``.
    """

    batch_size: int
    num_frames: int = 1

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"SpacetimeLayout.{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"SpacetimeLayout.{name} must be >= 1, got {value}")

    @property
    def num_entries(self) -> int:
        """Number of batch entries ``batch_size * num_frames`` (the first coordinate column's range)."""
        return self.batch_size * self.num_frames

    def entry(self, sample: int, frame: int) -> int:
        """Batch entry of ``(sample, frame)``."""
        if not (0 <= sample < self.batch_size and 0 <= frame < self.num_frames):
            raise IndexError(f"(sample={sample}, frame={frame}) is outside {self}")
        return sample * self.num_frames + frame

    def packed(self) -> "SpacetimeLayout":
        """Layout after merging frame pairs ``(2k, 2k+1)``: ``(batch_size, num_frames // 2)``.

        Raises:
            FrameCountError: ``num_frames`` is odd.
        """
        if self.num_frames % 2:
            raise FrameCountError(
                f"temporal packing merges frame pairs and needs an even frame count, got T={self.num_frames}; "
                "pad the clip with its last frame (the SS4D pipeline does this for you)."
            )
        return SpacetimeLayout(self.batch_size, self.num_frames // 2)
