from dataclasses import replace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ss4d.data.synthetic import Part, make_clip, normalise_scene, occupancy, parts_albedo, pattern_mix
from ss4d.data.world import FAMILIES, HELDOUT_FAMILIES, TRAIN_FAMILIES, WorldPart, world_scene


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6))
def test_scenes_are_a_pure_function_of_the_seed(seed):
    a, b = world_scene(seed), world_scene(seed)
    assert a == b
    assert a.family in TRAIN_FAMILIES and world_scene(seed, split="heldout").family in HELDOUT_FAMILIES


def test_splits_cover_their_families_and_never_share_one():
    assert not set(TRAIN_FAMILIES) & set(HELDOUT_FAMILIES) and set(FAMILIES) == {
        "creature", "chain", "winged", "wheeled", "plant", "blob"}  # fmt: skip
    train = {world_scene(s).family for s in range(40)}
    heldout = {world_scene(s, split="heldout").family for s in range(100000, 100020)}
    assert train == set(TRAIN_FAMILIES) and heldout == set(HELDOUT_FAMILIES)
    motions = {m for s in range(40) for m in world_scene(s).motions}
    assert {"bounce", "spin", "drift", "squash"} <= motions  # the global motions compose with every family


def test_every_family_makes_a_moving_object_inside_the_unit_cube():
    for k, family in enumerate(FAMILIES):
        scene = normalise_scene(world_scene(k, family=family), 4)
        occ = [occupancy(scene, t / 4, 12) for t in range(4)]
        assert all(o.shape[0] > 0 for o in occ), family
        sets = [{tuple(v) for v in o.tolist()} for o in occ]
        assert any(sets[t] != sets[0] for t in range(1, 4)), family  # articulated / moving: frames differ


def test_world_clips_are_deterministic_and_record_their_family():
    a = make_clip(7, num_frames=2, resolution=8, image_size=16, num_views=1, world="families-heldout")
    b = make_clip(7, num_frames=2, resolution=8, image_size=16, num_views=1, world="families-heldout")
    assert torch.equal(a.video, b.video) and torch.equal(a.coords, b.coords)
    assert a.meta["world"] == "families-heldout" and a.meta["family"] in HELDOUT_FAMILIES
    v1 = make_clip(7, num_frames=2, resolution=8, image_size=16, num_views=1)
    assert "world" not in v1.meta and not torch.equal(v1.video, a.video)  # v1 (ss4d-tiny's data) is unchanged


def test_part_albedo_blends_the_two_colours_by_pattern():
    """Both worlds colour their parts through one `parts_albedo`: plain parts show their first colour, every
    pattern mixes in [0, 1] and shows both colours somewhere."""
    part = WorldPart("sphere", (0.3, 0.3, 0.3), (0.0, 0.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)), "plain")
    local = torch.rand(400, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    idx = torch.zeros(400, dtype=torch.long)
    torch.testing.assert_close(parts_albedo([part], idx, local), torch.tensor([[1.0, 0.0, 0.0]]).expand(400, 3))
    for pattern in ("stripes", "checker", "dots", "gradient"):
        mix = pattern_mix(pattern, local, part.size)
        assert mix.shape == (400,) and 0 <= mix.min() < mix.max() <= 1, pattern
        albedo = parts_albedo([replace(part, pattern=pattern)], idx, local)
        torch.testing.assert_close(albedo, torch.stack([1 - mix, torch.zeros(400), mix], -1))
    v1 = Part("box", (0.2, 0.2, 0.2), (0.0, 0.0, 0.0), (0.1, 0.2, 0.3), (0.9, 0.8, 0.7), "checker")
    assert v1.colors == ((0.1, 0.2, 0.3), (0.9, 0.8, 0.7))
    assert torch.equal(parts_albedo([v1, part], torch.ones(400, dtype=torch.long), local),
                       parts_albedo([part], idx, local))  # fmt: skip
