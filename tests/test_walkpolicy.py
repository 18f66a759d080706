"""The walk policy, tag combination by tag combination, each row with the OSM rule it follows."""

from __future__ import annotations

import pandas as pd
import pytest

from servicecircle.walkpolicy import classify, classify_tags

# (tags, expected class, steps flag, the OSM wiki meaning the row follows)
POLICY = [
    ({"highway": "footway"}, "public", False, "footway: a path for pedestrians"),
    ({"highway": "residential"}, "public", False, "residential street: all traffic, foot too"),
    ({"highway": "pedestrian"}, "public", False, "pedestrian street"),
    ({"highway": "path"}, "public", False, "path: multi-use, foot implied"),
    ({"highway": "living_street"}, "public", False, "living street: pedestrians have priority"),
    ({"highway": "service"}, "public", False, "service road without access tag: open"),
    ({"highway": "track"}, "public", False, "track: open unless tagged otherwise"),
    ({"highway": "trunk"}, "public", False, "trunk: foot allowed by default in China"),
    ({"highway": "steps"}, "public", True, "steps: walkable, flagged for presets"),
    ({"highway": "cycleway"}, "no", False, "cycleway: no foot access without foot tag"),
    ({"highway": "cycleway", "foot": "designated"}, "public", False,
     "shared foot/cycle path (signed for both)"),
    ({"highway": "cycleway", "foot": "yes"}, "public", False, "cycleway, foot allowed"),
    ({"highway": "cycleway", "foot": "permissive"}, "public", False,
     "foot tolerated by the owner"),
    ({"highway": "cycleway", "foot": "no"}, "no", False, "foot=no: the most specific tag"),
    ({"highway": "bridleway", "foot": "designated"}, "public", False, "bridleway with foot"),
    ({"highway": "footway", "foot": "no"}, "no", False, "foot=no overrides the class"),
    ({"highway": "footway", "access": "no"}, "no", False, "access=no: no one, foot included"),
    ({"highway": "footway", "access": "no", "foot": "yes"}, "public", False,
     "foot=yes overrides access=no"),
    ({"highway": "footway", "access": "private"}, "private", False,
     "private path of a gated compound (小区)"),
    ({"highway": "service", "access": "private", "foot": "yes"}, "public", False,
     "foot=yes overrides access=private"),
    ({"highway": "footway", "foot": "private"}, "private", False, "foot=private"),
    ({"highway": "service", "service": "private"}, "private", False,
     "service=private (legacy tagging of private service roads)"),
    ({"highway": "residential", "access": "destination"}, "private", False,
     "destination: only to reach places along it"),
    ({"highway": "footway", "access": "permissive"}, "public", False,
     "permissive: open until the owner says otherwise"),
    ({"highway": "footway", "access": "customers"}, "public", False,
     "customers: open to the public that visits"),
    ({"highway": "track", "access": "agricultural"}, "no", False,
     "agricultural: farm vehicles only"),
    ({"highway": "track", "access": "forestry", "foot": "yes"}, "public", False,
     "forestry track open on foot"),
    ({"highway": "service", "access": "military"}, "no", False, "military: no access"),
    ({"highway": "motorway"}, "no", False, "motorway: pedestrians forbidden"),
    ({"highway": "motorway_link"}, "no", False, "motorway link: pedestrians forbidden"),
    ({"highway": "construction"}, "no", False, "under construction: not there yet"),
    ({"highway": "proposed", "foot": "yes"}, "no", False, "proposed: not built, whatever foot"),
    ({"highway": "platform"}, "no", False, "platform outline, not a walking line"),
    ({"highway": "pedestrian", "area": "yes"}, "no", False, "square mapped as area outline"),
    ({"highway": "primary", "sidewalk": "separate"}, "public", False,
     "road whose sidewalk is mapped apart: kept as its stand-in"),
    ({"highway": "primary", "foot": "use_sidepath"}, "public", False,
     "use_sidepath: the road stands in for the sidepath"),
    ({"highway": "steps", "access": "private"}, "private", True, "steps inside a compound"),
    ({"highway": "FOOTWAY", "ACCESS": "x", "access": "Private"}, "private", False,
     "values read case-blind"),
    ({"highway": "footway", "foot": "yes;no"}, "public", False, "a list: its first value"),
    ({"highway": ["footway", "steps"]}, "public", False, "merged ways: the first value"),
    ({"highway": None}, "no", False, "no highway tag: not a way"),
    ({"highway": "bus_guideway"}, "no", False, "guided busway"),
    ({"highway": "raceway"}, "no", False, "race track"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tags", "expected", "steps", "meaning"), POLICY, ids=[row[3] for row in POLICY]
)
def test_policy_row(tags, expected, steps, meaning):
    assert classify_tags(tags) == (expected, steps), meaning


def test_vectorised_classify_agrees_with_the_rows():
    frame = pd.DataFrame([row[0] for row in POLICY])
    classes, steps = classify(frame)
    for (tags, expected, step, meaning), c, s in zip(POLICY, classes, steps, strict=True):
        assert (c, bool(s)) == (expected, step), (tags, meaning)


def test_missing_columns_count_as_untagged():
    classes, steps = classify(pd.DataFrame({"highway": ["cycleway", "footway", "steps"]}))
    assert list(classes) == ["no", "public", "public"]
    assert list(steps) == [False, False, True]
    empty_c, empty_s = classify(pd.DataFrame({"highway": []}))
    assert len(empty_c) == len(empty_s) == 0
