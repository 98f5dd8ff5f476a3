"""Reasons: the portfolio-wide builder writes what the one-application form writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.base import Evidence, Finding
from ringscope.detectors.risk.reasons import Partner, ReasonContext, build_reasons, reasons_json

COLUMNS = [
    "log_amount",
    "applicant_age",
    "has_agent",
    "product",
    "earlier_sharers_phone",
    "bad_earlier_device",
    "known_bad_1hop",
    "det_shared_identifier_rings",
    "det_contact_loops",
    "known_bad_2hop",
    "findings_count",
]


def _case(n: int, seed: int):
    rng = np.random.default_rng(seed)
    ids = [f"A{i:04d}" for i in range(n)]
    features = pd.DataFrame(
        {
            "log_amount": np.where(rng.random(n) < 0.1, np.nan, rng.normal(11, 2, n)),
            "applicant_age": rng.uniform(18, 70, n),
            "has_agent": rng.random(n) < 0.3,
            "product": pd.Series(rng.choice(["经营贷", "consumer", "(none)"], n), dtype="string").to_numpy(),
            "earlier_sharers_phone": rng.integers(0, 4, n),
            "bad_earlier_device": rng.integers(0, 2, n).astype(float),
            "known_bad_1hop": rng.integers(0, 3, n).astype(float),
            "det_shared_identifier_rings": rng.random(n),
            "det_contact_loops": rng.random(n),
            "known_bad_2hop": rng.integers(0, 2, n).astype(float),
            "findings_count": rng.integers(0, 3, n).astype(float),
        },
        index=pd.Index(ids, name="application_id"),
    )
    # ties-free contributions around the 0.01 cut, some large, some missing, a few infinite
    contrib = rng.normal(0, 0.6, (n, len(COLUMNS)))
    contrib[rng.random((n, len(COLUMNS))) < 0.15] = rng.uniform(0.0095, 0.0105, 1)[0]
    contrib[rng.random((n, len(COLUMNS))) < 0.01] = np.nan
    contrib[0, 0] = np.inf
    contrib[1, :] = -1.0 - np.arange(len(COLUMNS)) / 100  # no reason at all
    contrib = pd.DataFrame(contrib, index=features.index, columns=COLUMNS)
    findings = [
        Finding(
            "shared_identifier_rings" if k % 2 else "contact_loops",
            "ring",
            tuple(sorted(rng.choice(ids, 3, replace=False))),
            round(float(rng.random()), 6),
            (Evidence("shared_device", 0.4, f"device d{k} shared \u2014 三人"), Evidence("size", 0.1, "3 members")),
            summary=f"finding {k} 摘要",
        )
        for k in range(n // 10)
    ]
    by_app: dict[str, list[Finding]] = {}
    for f in findings:
        for m in f.members:
            by_app.setdefault(m, []).append(f)
    partner_rows = [
        Partner(a, kind, f"{kind}-{a}", f"B{k}", "fraud", pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(days=k))
        for k, a in enumerate(rng.choice(ids, n // 8))
        for kind in ("device", "phone")
    ]
    context = ReasonContext(
        by_app,
        pd.DataFrame(columns=["application_id", "kind", "identifier", "entity"]),
        pd.DataFrame(columns=["applied_at", "label"]),
        partners=pd.DataFrame(partner_rows, columns=list(Partner._fields)),
    )
    return contrib, features, context, partner_rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_build_reasons_writes_what_one_application_gets(seed):
    contrib, features, context, partner_rows = _case(400, seed)
    got = build_reasons(contrib, features, context)
    assert list(got.index) == list(contrib.index)
    by_app: dict[str, list] = {}
    for p in partner_rows:
        by_app.setdefault(p.application_id, []).append(p)
    with_evidence = 0
    for row, app_id in enumerate(contrib.index):
        expected = reasons_json(
            contrib.to_numpy()[row],
            list(contrib.columns),
            features.loc[app_id],
            context.findings_by_app.get(app_id, []),
            by_app.get(app_id),
        )
        assert got[app_id] == expected, app_id
        with_evidence += '"evidence"' in expected
    assert with_evidence > 10  # both ways of building a row were compared
    assert got["A0001"] == "[]"
    first = json.loads(got["A0000"].replace("Infinity", "1e999"))[0]
    assert first["feature"] == "log_amount"


def test_build_reasons_with_features_in_another_order():
    contrib, features, context, _ = _case(60, 3)
    shuffled = features.sample(frac=1.0, random_state=0)
    assert build_reasons(contrib, shuffled, context).equals(build_reasons(contrib, features, context))


def test_bad_partners_by_chunk_are_the_earlier_known_bad_sharers_in_link_order():
    """Chunks of applications against links built once: for each link of a
    chosen application (in the links' order), each earlier known-bad
    application of another person on the same identifier (in the links' order)."""
    rng = np.random.default_rng(9)
    n = 300
    ids = [f"A{i:03d}" for i in range(n)]
    apps = pd.DataFrame(
        {
            "application_id": ids,
            "applied_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), unit="h"),
            "label": rng.choice(["fraud", "good", "default", None], n, p=[0.2, 0.5, 0.1, 0.2]),
        }
    )
    rows = [
        (a, kind, f"{kind}{rng.integers(0, 25)}", f"p{rng.integers(0, 200)}")
        for a in ids
        for kind in ("device", "phone", "ip")
        if rng.random() < 0.7
    ]
    links = pd.DataFrame(rows, columns=["application_id", "kind", "identifier", "entity"]).sample(
        frac=1.0, random_state=1, ignore_index=True
    )
    context = ReasonContext.build([], links, apps)
    at = apps.set_index("application_id")["applied_at"]
    label = apps.set_index("application_id")["label"]
    records = list(links.itertuples(index=False))
    for chunk in (ids[:100], ids[100:250], ids[250:], ids[::7]):
        wanted = set(chunk)
        expected = [
            (me.application_id, me.kind, me.identifier, other.application_id, label[other.application_id])
            for me in records
            if me.application_id in wanted
            for other in records
            if label[other.application_id] == "fraud"
            and (other.kind, other.identifier) == (me.kind, me.identifier)
            and other.entity != me.entity
            and at[other.application_id] < at[me.application_id]
        ]
        got = context.bad_partners(chunk)
        assert len(expected) > 20
        assert (
            list(
                zip(
                    got["application_id"],
                    got["kind"],
                    got["identifier"],
                    got["application_id_partner"],
                    got["partner_label"],
                )
            )
            == expected
        )


def test_known_bad_join_on_integer_keys_is_the_merge_on_text():
    """The chunk join of :meth:`ReasonContext.bad_partners` on integer keys
    gives what the merge on ``kind`` and ``identifier`` gave: the same rows,
    columns, types and order, missing keys matching missing keys as in a merge."""
    rng = np.random.default_rng(4)
    n = 200
    ids = [f"A{i:03d}" for i in range(n)]
    apps = pd.DataFrame(
        {
            "application_id": ids,
            "applied_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), unit="h"),
            "label": rng.choice(["fraud", "good"], n, p=[0.3, 0.7]),
        }
    )
    rows = [
        (a, kind, None if rng.random() < 0.05 else f"{kind}{rng.integers(0, 15)}", f"p{rng.integers(0, 120)}")
        for a in ids
        for kind in ("device", "phone", "ip")
        if rng.random() < 0.8
    ]
    links = pd.DataFrame(rows, columns=["application_id", "kind", "identifier", "entity"]).astype("string")
    context = ReasonContext.build([], links, apps)
    context.bad_partners(ids[:1])  # builds the keys
    for rows_at in (np.arange(len(links)), np.sort(rng.choice(len(links), 150, replace=False)), np.array([], int)):
        mine = links.iloc[rows_at]
        expected = mine.merge(context._bad_links, on=["kind", "identifier"], suffixes=("", "_partner"))
        got = context._join_bad(mine, context._link_keys[rows_at])
        pd.testing.assert_frame_equal(got, expected)
    assert len(links.iloc[np.arange(len(links))].merge(context._bad_links, on=["kind", "identifier"])) > 100


def test_reason_floats_are_formatted_once_per_value_as_one_by_one():
    from ringscope.detectors.risk.reasons import _float_texts, _json_float

    values = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-5, 0.0005, 0.0015, 2.5, 1 / 3, 12345.6789] * 7)
    values = np.random.default_rng(2).permutation(values)
    assert _float_texts(values) == [_json_float(round(v, 3)) for v in values.tolist()]


def test_features_and_reasons_hash_the_links_once(monkeypatch):
    """The identifier history and the known-bad partners key the same links:
    their identifiers are hashed once (``link_codes``), and the partners are
    those of freshly hashed links."""
    from ringscope.detectors.risk import features as features_module
    from ringscope.detectors.risk import reasons as reasons_module
    from ringscope.detectors.risk.features import identifier_history

    rng = np.random.default_rng(5)
    n = 120
    ids = [f"A{i:03d}" for i in range(n)]
    apps = pd.DataFrame(
        {
            "application_id": ids,
            "applied_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), unit="h"),
            "label": rng.choice(["fraud", "good"], n, p=[0.3, 0.7]),
        }
    )
    rows = [
        (a, kind, f"{kind}{rng.integers(0, 10)}", f"p{rng.integers(0, 80)}") for a in ids for kind in ("ip", "phone")
    ]
    links = pd.DataFrame(rows, columns=["application_id", "kind", "identifier", "entity"]).astype("str")
    fresh = ReasonContext.build([], links.copy(), apps).bad_partners(ids)
    hashed = []
    real = features_module.text_codes
    counted = lambda values: hashed.append(values.name) or real(values)  # noqa: E731
    monkeypatch.setattr(features_module, "text_codes", counted)
    monkeypatch.setattr(reasons_module, "text_codes", counted, raising=False)  # where the partners hashed them before
    times = apps.set_index("application_id")["applied_at"]
    identifier_history(links, times, apps.set_index("application_id")["label"].eq("fraud"))
    got = ReasonContext.build([], links, apps).bad_partners(ids)
    assert hashed.count("identifier") == 1
    assert len(got) > 20
    pd.testing.assert_frame_equal(got.reset_index(drop=True), fresh.reset_index(drop=True))


def test_partner_records_are_itertuples_own():
    from ringscope.detectors.risk.reasons import _records

    frame = pd.DataFrame(
        {
            "application_id": pd.Series(["a", "b", None], dtype="str"),
            "partner_label": pd.Series(["fraud", None, "good"], dtype="string"),
            "partner_at": pd.to_datetime(["2025-01-01", None, "2025-02-01"], utc=True),
            "1bad name": [1, 2, 3],
        }
    )
    got, expected = list(_records(frame)), list(frame.itertuples(index=False))
    assert [type(r)._fields for r in got] == [type(r)._fields for r in expected]
    assert [repr(r) for r in got] == [repr(r) for r in expected]
    assert list(_records(frame.iloc[:0])) == []


def _reasons_as_dumped(contributions, columns, values, findings, partners, top=5):
    """The reasons as ``json.dumps`` of their dicts wrote them (before the text was put together by parts)."""
    from ringscope.detectors.risk.reasons import _evidence, reason_code

    reasons = []
    for j in contributions.argsort()[::-1][:top]:
        c = float(contributions[j])
        if c <= 0.01:
            break
        value = values[columns[j]]
        code, detail = reason_code(columns[j])
        reason = {
            "code": code,
            "feature": columns[j],
            "contribution": round(c, 3),
            "value": value if isinstance(value, str) else round(float(value), 3),
            "detail": detail,
        }
        evidence = _evidence(columns[j], findings, partners)
        if evidence:
            reason["evidence"] = evidence
        reasons.append(reason)
    return json.dumps(reasons, ensure_ascii=False, default=str)


@pytest.mark.parametrize("seed", [0, 4])
def test_reasons_text_by_parts_is_json_dumps_of_the_reasons(seed):
    """Every row (with findings cited once per ring and evidence details of
    any type) is the text ``json.dumps`` gives the reason dicts."""
    contrib, features, context, partner_rows = _case(300, seed)
    odd = Finding("contact_loops", "loop", ("A0002", "A0003"), 0.5, (Evidence("x", 0.2, {"n": 2, "t": "三"}),))
    for app_id in ("A0002", "A0003"):
        context.findings_by_app.setdefault(app_id, []).append(odd)
    got = build_reasons(contrib, features, context)
    by_app: dict[str, list] = {}
    for p in partner_rows:
        by_app.setdefault(p.application_id, []).append(p)
    cited = 0
    for row, app_id in enumerate(contrib.index):
        expected = _reasons_as_dumped(
            contrib.to_numpy()[row],
            list(contrib.columns),
            features.loc[app_id],
            context.findings_by_app.get(app_id, []),
            by_app.get(app_id),
        )
        assert got[app_id] == expected, app_id
        cited += '"finding_id"' in expected
    assert cited > 10
