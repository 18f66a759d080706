"""Which OSM ways a pedestrian uses, and how: OSM's access rules as one table.

Every way gets one of three classes from its tags, following OSM's access precedence (the
most specific tag wins: ``foot`` over ``access``; see the OSM wiki pages *Key:access*,
*Key:foot* and *OSM tags for routing/Access restrictions*):

``public``
    anyone may walk it: any built ``highway`` class a pedestrian may use, or any way at all
    with ``foot=yes|designated|permissive`` (shared foot/cycle paths, tracks, service roads);
``private``
    walkable only by those who live or have business there: ``access=private`` or
    ``foot=private`` (gated compounds, 小区), ``access=destination`` / ``foot=destination``,
    ``service=private``. A walk may use these only at its start, from a home to the
    compound's gate (:data:`PRIVATE_POLICIES`);
``no``
    not walkable: not built (``proposed``, ``construction`` …), not a way for people
    (``motorway``, ``bus_guideway``, ``raceway``, ``platform``), an area outline
    (``area=yes``), ``foot=no``, or ``access=no`` (and the other access values that exclude
    pedestrians) without a foot override; ``highway=cycleway`` without a ``foot`` tag
    (pedestrians have no right of way there by default).

``highway=steps`` is kept and flagged (``steps``) so that presets can avoid it. Roads tagged
``sidewalk=separate`` or ``foot=use_sidepath`` stay walkable: many extracts hold the road but
not its separately mapped sidewalk, and the road stands in for it.

Values are read case-blind; a list of values (``"yes;no"``, or a list from osmnx when ways
were merged) takes its first value, as routers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "ACCESS_NO",
    "FOOT_YES",
    "NOT_FOR_WALKING",
    "PRIVATE_POLICIES",
    "TAGS",
    "PrivatePolicy",
    "classify",
    "classify_tags",
]

#: The tags the policy reads.
TAGS = ("highway", "foot", "access", "service", "area", "sidewalk")
#: How private ways (gated compounds) are used: ``exclude`` never; ``destination`` only at
#: the start of a walk from a home (default); ``include`` like public ways.
PrivatePolicy = Literal["exclude", "destination", "include"]
PRIVATE_POLICIES: tuple[str, ...] = ("exclude", "destination", "include")

#: ``foot`` values that open a way to pedestrians whatever its class or ``access``.
FOOT_YES = frozenset({"yes", "designated", "permissive", "official"})
#: ``foot``/``access`` values that keep the way for residents and visitors only.
PRIVATE = frozenset({"private", "destination", "customers_only", "residents"})
#: ``access`` values that exclude pedestrians unless ``foot`` says otherwise.
ACCESS_NO = frozenset(
    {
        "no",
        "agricultural",
        "forestry",
        "delivery",
        "military",
        "emergency",
        "bus",
        "psv",
        "disabled",
        "discouraged_no",
    }
)
#: ``highway`` classes that are not (yet, or any more) ways for people on foot.
NOT_FOR_WALKING = frozenset(
    {
        "abandoned",
        "bus_guideway",
        "construction",
        "disused",
        "no",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "services",
        "motorway",
        "motorway_link",
        "busway",
        "escape",
        "emergency_bay",
        "bus_stop",
    }
)
#: Classes that do not exist on the ground: even ``foot=yes`` does not make them walkable.
NOT_BUILT = frozenset(
    {"abandoned", "construction", "disused", "no", "planned", "proposed", "razed"}
)
#: Classes pedestrians may not use without an explicit ``foot`` permission.
NEEDS_FOOT_TAG = frozenset({"cycleway"})


def _first(value: Any) -> str:
    """The first value of a tag, lower-case, ``""`` when missing."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | np.ndarray):
        value = value[0] if len(value) else ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    text = str(value).strip().lower()
    return "" if text in ("nan", "none") else text.split(";")[0].strip()


def classify_tags(tags: Mapping[str, Any]) -> tuple[str, bool]:
    """The class (``public``, ``private`` or ``no``) and the steps flag of one way's tags.

    >>> classify_tags({"highway": "cycleway", "foot": "designated"})
    ('public', False)
    >>> classify_tags({"highway": "footway", "access": "private"})
    ('private', False)
    """
    highway = _first(tags.get("highway"))
    foot = _first(tags.get("foot"))
    access = _first(tags.get("access"))
    service = _first(tags.get("service"))
    steps = highway == "steps"
    if not highway or highway in NOT_BUILT or _first(tags.get("area")) == "yes":
        return "no", steps
    if foot in FOOT_YES:
        return "public", steps
    if foot == "no":
        return "no", steps
    if foot in PRIVATE:
        return "private", steps
    if highway in NOT_FOR_WALKING or (highway in NEEDS_FOOT_TAG and not foot):
        return "no", steps
    if access in ACCESS_NO:
        return "no", steps
    if access in PRIVATE or service == "private":
        return "private", steps
    return "public", steps


def classify(edges: pd.DataFrame) -> tuple[NDArray[np.str_], NDArray[np.bool_]]:
    """Class (``"public"``, ``"private"``, ``"no"``) and steps flag of every row of ``edges``.

    ``edges`` holds the tag columns of :data:`TAGS` it has (missing columns count as
    untagged). Vectorised over the distinct tag combinations, so millions of ways cost what
    their few hundred combinations cost.
    """
    n = len(edges)
    if n == 0:
        return np.empty(0, dtype="<U7"), np.empty(0, dtype=bool)
    cols = {}
    for tag in TAGS:
        if tag in edges.columns:
            cols[tag] = edges[tag].map(_first).to_numpy(dtype=object)
        else:
            cols[tag] = np.full(n, "", dtype=object)
    frame = pd.DataFrame(cols)
    combos, inverse = np.unique(
        frame.astype(str).agg("\x1f".join, axis=1).to_numpy(dtype=str), return_inverse=True
    )
    classes = np.empty(len(combos), dtype="<U7")
    steps = np.empty(len(combos), dtype=bool)
    for i, combo in enumerate(combos):
        classes[i], steps[i] = classify_tags(dict(zip(TAGS, combo.split("\x1f"), strict=True)))
    return classes[inverse], steps[inverse]
