"""Run the registered detectors over a store and write their findings back.

``run_detectors`` reads the portfolio once, resolves its entities once
(when identity resolution is among the detectors) and gives them to the
portfolio before any detector runs, so the order detectors run in changes
nothing; it times each one; a detector that fails is reported and the
others still run.
``save_findings`` replaces what the last run wrote: Finding nodes with
INVOLVES edges to their applications, entities and shared identifiers, and
SIMILAR_TO edges from identity resolution. ``export_findings`` writes the
two CSV files batch jobs and spreadsheets read.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ringscope.detectors.base import Finding
from ringscope.detectors.portfolio import Portfolio, as_portfolio
from ringscope.detectors.registry import DETECTORS, build_detector
from ringscope.detectors.settings import Settings, settings_batch
from ringscope.detectors.values import BadValues
from ringscope.graph.files import private_dir, write_csv
from ringscope.graph.model import FINDING_TARGETS
from ringscope.graph.store import GraphBatch

__all__ = [
    "DetectionRun",
    "run_detectors",
    "findings_batch",
    "save_findings",
    "stored_form",
    "export_findings",
    "findings_frame",
    "load_findings",
]


@dataclass
class DetectionRun:
    """What one ``detect`` run produced."""

    findings: list[Finding]
    seconds: dict[str, float]
    errors: dict[str, str] = field(default_factory=dict)
    portfolio: Portfolio | None = None
    run_at: str = ""
    #: what the detectors ran with (saved beside the findings; its digest on each one)
    settings: Settings = field(default_factory=Settings)

    @property
    def bad_values(self) -> list[BadValues]:
        """Stored values the detectors read as missing (implausible dates and figures)."""
        return list(self.portfolio.bad_values) if self.portfolio is not None else []

    def by_detector(self) -> pd.DataFrame:
        """Findings, members and seconds per detector (the ``detect`` summary)."""
        rows = []
        for name, seconds in self.seconds.items():
            mine = [f for f in self.findings if f.detector == name]
            members = {m for f in mine for m in f.members}
            rows.append(
                {
                    "detector": name,
                    "findings": len(mine),
                    "high (>=0.5)": sum(f.score >= 0.5 for f in mine),
                    "applications": len(members),
                    "seconds": round(seconds, 2),
                    "status": "error" if name in self.errors else "ok",
                }
            )
        return pd.DataFrame(rows)


def run_detectors(
    source: Any,
    names: list[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    settings: Settings | None = None,
    engine: Any = None,
) -> DetectionRun:
    """Run detectors ``names`` (default: all registered) over ``source``.

    Parameters
    ----------
    source : GraphStore or Portfolio
    names : list of str, optional
        Registry names, run in registry order.
    params : dict, optional
        ``{detector name: {parameter: value}}`` overrides (a shorthand for
        ``settings=Settings(params)``; give one or the other).
    settings : Settings, optional
        Detector parameters and training settings (``--config``).
    progress : callable, optional
        Called as ``progress(detector, done, total)``.
    engine : Engine, optional
        Where the whole-portfolio passes run (:mod:`ringscope.detectors.engine`);
        in this process when not given.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> run_detectors(EmbeddedStore(tempfile.mkdtemp()), ["guarantee_circles"]).findings
    []
    """
    if params and settings is not None:
        raise ValueError("Give either params or settings, not both.")
    settings = settings if settings is not None else Settings(params or {})
    params = settings.detector_params()
    portfolio = as_portfolio(source)
    if engine is not None:
        portfolio.engine = engine
    wanted = list(DETECTORS) if names is None else [n for n in DETECTORS if n in set(names)]
    unknown = set(names or ()) - set(DETECTORS)
    if unknown:
        raise KeyError(f"Unknown detectors {sorted(unknown)}; known: {', '.join(DETECTORS)}")
    # fail on bad parameters before any work is done
    detectors = [build_detector(name, **params.get(name, {})) for name in wanted]
    findings: list[Finding] = []
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    statistics = _resolve_entities(portfolio, detectors, seconds, errors)
    for i, detector in enumerate(detectors):
        if progress:
            progress(detector.name, i, len(detectors))
        if detector.name in errors:
            continue
        start = time.perf_counter()
        try:
            # taken out of the dict: identity's fitted model and pairs are freed once it has run
            found = (
                detector.run(portfolio, statistics=statistics.pop(detector.name))
                if detector.name in statistics
                else detector.run(portfolio)
            )
            findings.extend(found)
        except Exception as exc:  # one broken detector must not hide the others' findings
            errors[detector.name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        seconds[detector.name] = seconds.get(detector.name, 0.0) + time.perf_counter() - start
    if progress:
        progress("done", len(detectors), len(detectors))
    return DetectionRun(
        findings, seconds, errors, portfolio, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), settings
    )


def _resolve_entities(
    portfolio: Portfolio, detectors: list, seconds: dict[str, float], errors: dict[str, str]
) -> dict[str, Any]:
    """Give ``portfolio`` the entities identity resolution finds, before any
    detector runs; the statistics computed for it are returned for its run
    (resolving is most of its work). Without identity resolution among
    ``detectors`` the portfolio keeps the entities the last run stored."""
    identity = next((d for d in detectors if hasattr(d, "resolve")), None)
    if identity is None:
        return {}
    start = time.perf_counter()
    try:
        stats = identity.statistics(portfolio)
        portfolio.use_entities(identity.resolve(portfolio, stats))
    except Exception as exc:  # the others still run, on the stored entities
        errors[identity.name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        stats = None
    seconds[identity.name] = time.perf_counter() - start
    return {} if stats is None else {identity.name: stats}


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    """One row per finding: ``finding_id``, ``detector``, ``kind``, ``score``,
    ``size``, ``summary``, ``evidence`` (JSON)."""
    return pd.DataFrame(
        {
            "finding_id": [f.finding_id for f in findings],
            "detector": [f.detector for f in findings],
            "kind": [f.kind for f in findings],
            "score": [round(f.score, 4) for f in findings],
            "size": [f.size for f in findings],
            "summary": [f.summary for f in findings],
            "evidence": [f.evidence_json() for f in findings],
        },
        columns=["finding_id", "detector", "kind", "score", "size", "summary", "evidence"],
    )


def findings_batch(run: DetectionRun) -> GraphBatch:
    """The graph form of a run: Finding nodes, INVOLVES and SIMILAR_TO edges."""
    findings = _unique(run.findings)
    nodes = findings_frame(findings).rename(columns={"finding_id": "key"})
    nodes["parameters"] = [json.dumps(f.parameters, ensure_ascii=False, default=str) for f in findings]
    nodes["run_at"] = run.run_at
    nodes["settings"] = run.settings.digest
    involves: dict[str, list[tuple[str, str, str]]] = {label: [] for label in FINDING_TARGETS}
    for f in findings:
        fid = f.finding_id
        involves["Application"].extend((fid, m, "member") for m in f.members)
        for label, key in f.entities:
            if label in involves:
                involves[label].append((fid, key, "member"))
        for label, key in f.shared:
            if label in involves:
                involves[label].append((fid, key, "shared"))
    rels = {
        f"Finding-INVOLVES-{label}": pd.DataFrame(rows, columns=["src", "dst", "role"]).drop_duplicates(["src", "dst"])
        for label, rows in involves.items()
        if rows
    }
    if run.portfolio is not None:
        for name, frame in run.portfolio.similar_pairs.items():
            if frame is not None and len(frame):
                rels[name] = frame[["src", "dst", "score", "features", "method"]]
    return GraphBatch(nodes={"Finding": nodes}, relationships=rels)


def save_findings(store: Any, run: DetectionRun, progress=None) -> None:
    """Replace the findings, SIMILAR_TO edges and saved settings in ``store`` with this run's."""
    batch = findings_batch(run)
    batch.nodes.update(settings_batch(run.settings, run.run_at))
    store.replace_derived(batch, progress)


def export_findings(findings: list[Finding], folder: str | Path) -> tuple[Path, Path]:
    """Write ``findings.csv`` (finding_id, detector, kind, score, size, summary,
    evidence JSON) and ``members.csv`` (finding_id, application_id) to ``folder``."""
    folder = Path(folder)
    private_dir(folder)
    findings = _unique(findings)
    findings_path = folder / "findings.csv"
    members_path = folder / "members.csv"
    write_csv(findings_frame(findings), findings_path)
    members = pd.DataFrame(
        [(f.finding_id, m) for f in findings for m in f.members], columns=["finding_id", "application_id"]
    )
    write_csv(members, members_path)
    return findings_path, members_path


def _unique(findings: list[Finding]) -> list[Finding]:
    """Drop repeated finding ids (keep the highest score), best first."""
    best: dict[str, Finding] = {}
    for f in findings:
        if f.finding_id not in best or f.score > best[f.finding_id].score:
            best[f.finding_id] = f
    return sorted(best.values(), key=lambda f: (-f.score, f.finding_id))


def load_findings(store: Any) -> list[Finding]:
    """Read back the findings a ``detect`` run saved in ``store``."""
    nodes = store.read_nodes("Finding")
    if nodes.empty:
        return []
    return _findings_from(
        nodes, {label: _involves(store, label) for label in ("Application", "Person", "Company", "Agent")}
    )


def stored_form(findings: list[Finding]) -> list[Finding]:
    """``findings`` as :func:`load_findings` reads them back once saved
    (``findings_batch`` then the same parsing, no store in between): what a
    job that wrote them keeps in memory instead of reading the store again.

    Example
    -------
    >>> from ringscope.detectors.base import Evidence
    >>> f = Finding("rings", "ring", ("A2", "A1"), 0.5, (Evidence("x", 0.5, "d"),))
    >>> [(g.finding_id == f.finding_id, g.members) for g in stored_form([f])]
    [(True, ('A1', 'A2'))]
    """
    if not findings:
        return []
    batch = findings_batch(DetectionRun(list(findings), {}))
    involves = {}
    for label in ("Application", "Person", "Company", "Agent"):
        frame = batch.relationships.get(f"Finding-INVOLVES-{label}")
        involves[label] = frame if frame is not None else pd.DataFrame(columns=["src", "dst", "role"])
    return _findings_from(batch.nodes["Finding"], involves)


def _findings_from(nodes: pd.DataFrame, involves: dict[str, pd.DataFrame]) -> list[Finding]:
    from ringscope.detectors.base import Evidence

    # by id, whatever order the store keeps: ties downstream (reasons, ring ids) must not depend on it
    nodes = nodes.sort_values("key", kind="stable", ignore_index=True)
    # grouped in one pass over plain lists: a group-by building a frame per finding
    # cost 3.7 of the 5.4 s of reading 7,000 findings back at 200k applications
    apps = involves["Application"]
    apps = apps[(apps["role"] == "member").to_numpy() & apps["src"].notna().to_numpy()]
    members = {fid: tuple(sorted(dst)) for fid, dst in _grouped(apps["src"].tolist(), apps["dst"].tolist()).items()}
    entity_map: dict[str, list] = {}
    for label in ("Person", "Company", "Agent"):
        rel = involves[label].sort_values(["src", "dst"], kind="stable")
        rel = rel[(rel["role"] == "member").to_numpy() & rel["src"].notna().to_numpy()]
        for fid, dst in _grouped(rel["src"].tolist(), rel["dst"].tolist()).items():
            entity_map.setdefault(fid, []).extend((label, d) for d in dst)
    out = []
    for row in nodes.itertuples(index=False):
        evidence = tuple(
            Evidence(e["feature"], float(e["contribution"]), e["detail"], tuple(e.get("values", ())))
            for e in json.loads(row.evidence or "[]")
        )
        out.append(
            _StoredFinding(
                detector=row.detector,
                kind=row.kind,
                members=members.get(row.key, ()),
                score=float(row.score),
                evidence=evidence,
                parameters=json.loads(row.parameters or "{}"),
                summary=row.summary or "",
                entities=tuple(entity_map.get(row.key, ())),
                stored_id=row.key,
            )
        )
    return out


def _grouped(keys: list, values: list) -> dict[Any, list]:
    """``values`` by ``keys``, each list in the order given.

    >>> _grouped(["f2", "f1", "f2"], ["a", "b", "c"])
    {'f2': ['a', 'c'], 'f1': ['b']}
    """
    out: dict[Any, list] = {}
    for key, value in zip(keys, values):
        out.setdefault(key, []).append(value)
    return out


def _involves(store: Any, label: str) -> pd.DataFrame:
    rel = store.read_relationships(f"Finding-INVOLVES-{label}", ["role"])
    if "role" not in rel.columns:  # no such edges saved yet
        rel["role"] = pd.Series([], dtype=object)
    return rel


@dataclass(frozen=True)
class _StoredFinding(Finding):
    """A finding read back from a store keeps the id it was saved under."""

    stored_id: str = ""

    @property
    def finding_id(self) -> str:
        return self.stored_id
