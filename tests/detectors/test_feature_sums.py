"""Per-kind sums of the identifier history: what the pivot tables gave, values and types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.risk.features import SHARED_KINDS, _sums_by_kind


def _pivoted(history: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The former code: pivot tables of the sums, reindexed, missing as 0."""
    earlier = history.pivot_table(index="application_id", columns="kind", values="earlier", aggfunc="sum")
    bad = history.pivot_table(index="application_id", columns="kind", values="bad_earlier", aggfunc="sum")
    out = pd.DataFrame(index=index)
    for kind in SHARED_KINDS:
        out[f"earlier_sharers_{kind}"] = earlier.get(kind, pd.Series(dtype=float)).reindex(index).fillna(0.0)
        out[f"bad_earlier_{kind}"] = bad.get(kind, pd.Series(dtype=float)).reindex(index).fillna(0.0)
    return out


@pytest.mark.parametrize("case", ["holes", "every kind", "one kind everywhere", "strangers", "empty"])
def test_sums_by_kind_equal_the_pivot_tables(case):
    rng = np.random.default_rng(len(case))
    index = pd.Index([f"A{i}" for i in range(50)], name="application_id")
    if case == "every kind":  # every application has a link of each kind: whole numbers
        rows = [(a, k) for a in index for k in SHARED_KINDS for _ in range(int(rng.integers(1, 3)))]
    elif case == "one kind everywhere":  # complete in the one kind the links hold
        rows = [(a, "device") for a in index]
    elif case == "empty":
        rows = []
    else:
        rows = [(str(rng.choice(index)), str(rng.choice(SHARED_KINDS))) for _ in range(120)]
        if case == "strangers":  # links of applications that are not in the index
            rows += [("Z1", "phone"), ("Z2", "ip")]
    history = pd.DataFrame(rows, columns=["application_id", "kind"])
    history["earlier"] = rng.integers(0, 9, len(history)).astype(np.int64)
    history["bad_earlier"] = rng.integers(0, 3, len(history)).astype(np.int64)
    expected = _pivoted(history, index)
    got = pd.DataFrame(_sums_by_kind(history, index), index=index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_names=False)


def test_known_bad_2hop_counts_earlier_bad_members_by_time_and_label():
    """``known_bad_2hop``: the distinct other members of an application's
    findings that applied earlier and are known bad; a member without a time,
    or not among the applications, is never earlier."""
    from ringscope.detectors.base import Finding
    from ringscope.detectors.risk.features import finding_features

    t = pd.Timestamp("2025-03-01", tz="UTC")
    apps = pd.DataFrame(
        {
            "application_id": ["a", "b", "c", "d", "e"],
            "applied_at": [t, t + pd.Timedelta("1h"), t + pd.Timedelta("2D"), pd.NaT, t + pd.Timedelta("3D")],
            "label": ["fraud", "fraud", "good", "fraud", None],
        }
    )
    one = Finding("shared_identifier_rings", "ring", ("a", "b", "c", "d", "e"), 0.8, ())
    two = Finding("contact_loops", "loop", ("b", "c", "zz"), 0.6, ())  # zz: not an application
    got = finding_features([one, two], apps)["known_bad_2hop"]
    assert got.to_dict() == {"a": 0.0, "b": 1.0, "c": 2.0, "d": 0.0, "e": 2.0}
