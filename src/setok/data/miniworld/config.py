"""The mini world's config (SPEC §6): the ``data.miniworld`` section of a profile."""

from __future__ import annotations

from dataclasses import dataclass

from setok.data.miniworld.render import MIN_RESOLUTION
from setok.data.miniworld.scene import MAX_OBJECTS


@dataclass
class MiniWorldConfig:
    """How much of the mini world a profile renders. Defaults are the mini profile's."""

    resolution: int = 64            # image side in pixels (32 smoke, 64 mini)
    max_objects: int = MAX_OBJECTS  # objects per image are uniform in 1..max_objects (fewer if they don't fit)
    n_train: int = 2000             # images per split written by `setok data miniworld` / used by the trainers
    n_val: int = 200
    n_test: int = 200
    n_compositional: int = 200
    chapter_n: int = 300            # images the chapter's statistics are computed over
    root: str = "artifacts/miniworld/mini"  # where the files go, relative to the repository root

    def __post_init__(self) -> None:
        if self.resolution < MIN_RESOLUTION:
            raise ValueError(f"data.miniworld.resolution must be >= {MIN_RESOLUTION} (got {self.resolution})")
        if not 1 <= self.max_objects <= MAX_OBJECTS:
            raise ValueError(f"data.miniworld.max_objects must be in [1, {MAX_OBJECTS}] (got {self.max_objects})")
        for name in ("n_train", "n_val", "n_test", "n_compositional", "chapter_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.miniworld.{name} must be >= 1 (got {getattr(self, name)})")

    def n(self, split: str) -> int:
        """Images of ``split``."""
        return getattr(self, f"n_{split}")


def from_profile(profile: str, overrides: list[str] | None = None) -> MiniWorldConfig:
    """The ``data.miniworld`` section of ``profile`` as a :class:`MiniWorldConfig`."""
    from setok.config import build, load_profile

    cfg = load_profile(profile, overrides)
    return build(MiniWorldConfig, cfg.get("data", {}).get("miniworld", {}), where="data.miniworld")
