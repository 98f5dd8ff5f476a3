"""What the risk model learns: fraud by default, credit default only on request.

``train`` targets fraud (the ``fraud`` label and confirmed-fraud case
verdicts); ``default`` is its own model. Known-bad neighbours in the graph
features follow the target, the same way in training and in ``flag``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import SharedIdentifierRings
from ringscope.detectors.risk.features import GRAPH, application_features
from ringscope.detectors.risk.flagging import FlagIndex, csr_rows
from ringscope.detectors.risk.reasons import Partner
from ringscope.detectors.risk.scoring import TARGETS, TrainingConfig, train_models
from ringscope.detectors.risk.training import outcome_labels, target_outcomes, train
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

T0 = datetime(2025, 3, 1, 10)


def _cases(store, rows: list[tuple[str, str]]) -> None:
    store.write(
        GraphBatch(
            nodes={
                "Case": pd.DataFrame(
                    {
                        "key": [f"case-{i}" for i in range(len(rows))],
                        "target_label": ["Application"] * len(rows),
                        "target_key": [key for key, _ in rows],
                        "status": [status for _, status in rows],
                    }
                )
            }
        )
    )


def test_each_target_takes_its_outcomes_from_labels_and_verdicts(tmp_path):
    b = ExportBuilder()
    for app_id, label in (
        ("F", "fraud"),
        ("D", "default"),
        ("G", "good"),
        ("DC", "default"),
        ("U1", ""),
        ("U2", ""),
        ("U3", ""),
    ):
        b.app(app_id, label=label)
    store = EmbeddedStore(tmp_path / "s")
    b.load(store, tmp_path / "e")
    # a default the investigators found to be fraud; a dismissed and an open alert on unlabelled ones
    _cases(store, [("DC", "Confirmed fraud"), ("U1", "Dismissed"), ("U2", "Open"), ("U3", "Confirmed fraud")])
    portfolio = Portfolio(store)
    labels = portfolio.applications.set_index("application_id")["label"]
    verdicts = outcome_labels(store, portfolio)
    fraud = target_outcomes(labels, verdicts, "fraud")
    default = target_outcomes(labels, verdicts, "default")
    # fraud: labelled and confirmed fraud are positives; a default and a dismissal are negatives
    assert fraud.to_dict() == {
        "F": "fraud",
        "D": "default",
        "G": "good",
        "DC": "fraud",
        "U1": "good",
        "U2": None,
        "U3": "fraud",
    }
    assert {a for a, o in fraud.items() if o in TARGETS["fraud"]} == {"F", "DC", "U3"}
    # default: the label column only, every fraud (labelled or confirmed) left out
    assert default.to_dict() == {"F": None, "D": "default", "G": "good", "DC": None, "U1": None, "U2": None, "U3": None}


def _neighbours_store(tmp_path) -> EmbeddedStore:
    """Earlier applications of other people sharing a device: one defaulted,
    one was fraud; later ones share with each."""
    b = ExportBuilder()
    b.app("DEF", device_id="dev-a", applied_at=T0, label="default")
    b.app("FRA", device_id="dev-b", applied_at=T0, label="fraud")
    for i in range(3):
        b.app(f"A{i}", device_id="dev-a", applied_at=T0 + timedelta(days=1 + i), label="good")
        b.app(f"B{i}", device_id="dev-b", applied_at=T0 + timedelta(days=1 + i), label="")
    for _ in range(6):
        b.app(label="good")
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    return store


@pytest.mark.parametrize("target", list(TARGETS))
def test_known_bad_neighbours_follow_the_target_in_training_and_flagging(tmp_path, target):
    store = _neighbours_store(tmp_path)
    portfolio = Portfolio(store)
    hubs = SharedIdentifierRings().hubs(portfolio)
    trained = application_features(portfolio, None, hubs, TARGETS[target])
    # a neighbour who merely defaulted is no evidence of fraud, and a fraud is no default
    known, other = ("B0", "A0") if target == "fraud" else ("A0", "B0")
    assert trained.loc[known, "bad_earlier_device"] == 1 and trained.loc[known, "known_bad_1hop"] == 1
    assert trained.loc[other, "bad_earlier_device"] == 0 and trained.loc[other, "known_bad_1hop"] == 0
    # the flagging index counts the same, for every application, once told the model's target
    index = FlagIndex(portfolio, [])
    index.use_known_bad(TARGETS[target])
    flagged = index.graph_features(np.arange(len(index.app_pos)))
    columns = [c for c in GRAPH if c in flagged.columns]
    pd.testing.assert_frame_equal(
        flagged[columns].sort_index(),
        trained[columns].sort_index(),
        check_dtype=False,
        check_names=False,
        check_index_type=False,
    )
    # and so do its reason partners
    partners = index.partners_of(index.app_pos.get_indexer([known, other]))
    assert {p.application_id for p in partners} == {known}


@pytest.fixture(scope="module")
def noisy_defaults(tmp_path_factory):
    """A generated book in which a third of the honest labelled applications
    are relabelled ``default`` at random: many defaults, unrelated to any ring."""
    root = tmp_path_factory.mktemp("noisy")
    generate_portfolio(GeneratorConfig(applications=2000, seed=5), root / "data")
    path = root / "data" / "applications.csv"
    apps = pd.read_csv(path, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    honest = apps.index[apps["label"].isin(["good", "default"])]
    apps.loc[honest, "label"] = np.where(rng.random(len(honest)) < 1 / 3, "default", "good")
    apps.to_csv(path, index=False)
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    save_findings(store, run_detectors(store, ["shared_identifier_rings", "guarantee_circles"]))
    return store, apps, root


def _partners_one_by_one(self: FlagIndex, positions, per_kind: int, scan: int) -> list[Partner]:
    """``FlagIndex.partners_of`` as it was written first: one application,
    one link, one candidate at a time (the vectorised one must equal it)."""
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    starts, ends = self._app_offsets[positions], self._app_offsets[positions + 1]
    rows = csr_rows(starts, ends)
    kinds = self._kinds[self._app_link_kind[rows]] if len(rows) else np.zeros(0, dtype=object)
    ident_idx, entity = self._app_link_ident[rows], self._app_link_entity[rows]
    offsets, bad_rows = self._bad_sharers()
    labels = self._labels
    out: list[Partner] = []
    at = 0
    for pos, count in zip(positions.tolist(), (ends - starts).tolist()):
        app_id, kept = self.app_pos[pos], {}
        for j in range(at, at + count):
            kind, i = kinds[j], ident_idx[j]
            if i < 0 or kept.get(kind, 0) >= per_kind:
                continue
            rows = bad_rows[offsets[i] : offsets[i + 1]][:scan]
            sharers = self._link_app[rows]
            hit = (self.t[sharers] < self.t[pos]) & self.timed[sharers] & (self._link_entity[rows] != entity[j])
            for q in sharers[hit][: per_kind - kept.get(kind, 0)].tolist():
                out.append(
                    Partner(app_id, kind, self._identifier(i), self.app_pos[q], labels[q], self.timestamp(self.t[q]))
                )
                kept[kind] = kept.get(kind, 0) + 1
        at += count
    return out


@pytest.mark.parametrize(("per_kind", "scan"), [(5, 20), (1, 3), (2, 50)])
def test_reason_partners_equal_the_one_by_one_search(noisy_defaults, per_kind, scan):
    store, _, _ = noisy_defaults
    index = FlagIndex(Portfolio(store), [])
    index.use_known_bad(TARGETS["default"])  # a third of the labelled book: many partners
    positions = np.random.default_rng(0).permutation(len(index.app_pos))
    expected = _partners_one_by_one(index, positions, per_kind, scan)
    assert len(expected) > 100 and len({p.kind for p in expected}) > 1  # something to get wrong
    assert index.partners_of(positions, per_kind, scan) == expected


def test_the_fraud_model_does_not_learn_defaults(noisy_defaults):
    store, apps, root = noisy_defaults
    result = train(store, TrainingConfig(), folder=root / "fraud-models")
    report = result.report
    n_fraud, n_default = int((apps["label"] == "fraud").sum()), int((apps["label"] == "default").sum())
    assert n_default > 3 * n_fraud  # defaults are most of the "bad" outcomes
    # its positives are the frauds; every default is a negative
    assert report["target"] == "fraud" and result.model.target == "fraud"
    assert report["bad"] == report["positives"]["total"] == n_fraud
    assert report["negatives"]["default"] == n_default
    # the old mixed target on the same book, with its own known-bad features
    portfolio = Portfolio(store)
    mixed_features = application_features(
        portfolio, load_findings(store), SharedIdentifierRings().hubs(portfolio), ("fraud", "default")
    )
    labels = portfolio.applications.set_index("application_id")["label"]
    applied_at = portfolio.applications.set_index("application_id")["applied_at"]
    _, mixed = train_models(mixed_features, labels.replace("default", "fraud"), applied_at, TrainingConfig())
    # both validate out of time on the same latest applications: judge both against fraud
    is_fraud = report["_valid"]["y"]
    assert len(mixed["_valid"]["y"]) == len(is_fraud) and mixed["_valid"]["y"].sum() > is_fraud.sum()
    auc_fraud = roc_auc_score(is_fraud, report["_valid"]["scores"][report["chosen"]])
    auc_mixed = roc_auc_score(is_fraud, mixed["_valid"]["scores"][mixed["chosen"]])
    assert auc_fraud > 0.9 and auc_fraud > auc_mixed + 0.05, (auc_fraud, auc_mixed)
    # on the whole book the fraud score ranks frauds above the relabelled defaults
    scored = result.scored.set_index("application_id")["score"]
    by_label = scored.groupby(labels.reindex(scored.index)).mean()
    assert by_label["fraud"] > 3 * by_label["default"]
    assert by_label["default"] == pytest.approx(by_label["good"], abs=0.02)
