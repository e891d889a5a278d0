import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ss4d.data.synthetic import make_clip, normalise_scene, occupancy
from ss4d.data.world import FAMILIES, HELDOUT_FAMILIES, TRAIN_FAMILIES, world_scene


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
