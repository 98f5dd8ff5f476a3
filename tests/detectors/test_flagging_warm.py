"""``FlagIndex.warm`` builds the detectors' lookup tables and changes nothing that is scored."""

from __future__ import annotations

import pandas as pd

from ringscope.detectors.risk.flagging import FlagIndex
from ringscope.detectors.risk.scoring import load_model, models_folder


def _members(index: FlagIndex) -> list[str]:
    """A member of a stored finding of each detector, and a few applications of no finding."""
    held = sorted({min(f.members) for f in index.findings if f.members})[:12]
    ids = index.portfolio.applications["application_id"].tolist()
    return held + [a for a in ids[-40:] if a not in index.findings_by_app][:4]


def test_warm_leaves_flags_and_saved_pairs_as_they_were(trained_store):
    store = trained_store
    model = load_model(models_folder(store))
    cold = FlagIndex.build(store)
    warm = FlagIndex.build(store)
    before = {k: v.copy() for k, v in warm.portfolio.similar_pairs.items()}
    probes = warm.warm()
    assert len(probes) >= 3  # a member of several detectors' findings
    assert not warm.detection_ran and warm.last_detection is None
    assert warm.portfolio.similar_pairs.keys() == before.keys()
    for key, pairs in before.items():
        pd.testing.assert_frame_equal(warm.portfolio.similar_pairs[key], pairs)
    apps = _members(cold)
    for app in apps:
        a, b = cold.score(model, [app]).flags, warm.score(model, [app]).flags
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(
        cold.score(model, apps, method="batch").flags, warm.score(model, apps, method="batch").flags
    )
