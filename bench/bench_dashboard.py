"""Dashboard benchmark: the alert queue with 10,000 findings, a 500-node ring, its evidence pack.

Targets (issues 6 and 14): queue first view <= 1 s with 10,000 findings (the
triage queue: exposure, known-bad members, top evidence, containment
nesting); a 500-node ring in <= 2 s, drawn with member labels (laid out in
Python by kind, a label size per node); the ring's evidence-pack PDF in <= 5 s.
Measured on a copy of an ingested portfolio (default:
20,000 synthetic applications, generated and ingested if no ``--store`` is
given) with 10,000 synthetic findings and one 500-node ring written into it.

Each page is run under AppTest (the whole script: caches, pandas, widgets,
payload serialisation; no browser), cold (first view after the data changed:
reads the store) and warm (every later view); the ring is also timed through
the service functions alone. Usage::

    python bench/bench_dashboard.py
    python bench/bench_dashboard.py --store /tmp/s20k
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAIN = str(ROOT / "app" / "dashboard" / "main.py")


def _store(path: str | None, work: Path):
    from ringscope.graph.embedded import EmbeddedStore

    target = work / "store"
    if path:
        shutil.copytree(path, target, ignore=shutil.ignore_patterns("models", "users.json"))
    else:
        from ringscope.ingest.pipeline import ingest_folder
        from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

        folder = work / "portfolio"
        generate_portfolio(GeneratorConfig(applications=20_000, seed=11), folder)
        ingest_folder(folder, EmbeddedStore(target), rejects_path=work / "rejects.csv")
    return EmbeddedStore(target)


def _ring(store, size: int = 185) -> str:
    """One finding of ``size`` applications, their applicants and what they share (~500 nodes)."""
    import pandas as pd

    from ringscope.graph.store import GraphBatch

    applied = store.read_relationships("Person-APPLIED-Application")
    pick = applied.drop_duplicates("src").head(size)
    key = "bench-ring-500"
    rels = {
        "Finding-INVOLVES-Application": pd.DataFrame({"src": key, "dst": pick["dst"].to_numpy(), "role": "member"}),
        "Finding-INVOLVES-Person": pd.DataFrame({"src": key, "dst": pick["src"].to_numpy(), "role": "member"}),
    }
    evidence = json.dumps([{"feature": "bench", "contribution": 1.0, "detail": "synthetic", "values": []}])
    node = pd.DataFrame(
        {
            "key": [key],
            "detector": ["bench"],
            "kind": ["ring"],
            "score": [0.999],
            "size": [size],
            "summary": ["bench ring"],
            "evidence": [evidence],
            "parameters": ["{}"],
            "run_at": ["2025-06-01T00:00:00Z"],
        }
    )
    store.write(GraphBatch(nodes={"Finding": node}, relationships=rels))
    return key


def _evidence_pack_rows(store, ring: str, index, members) -> list[tuple[str, float | None, float]]:
    """The 500-node ring's evidence pack, with a worked case (20 notes, a
    status change), as the case page makes it (graph index cached): the first
    in the process (imports fpdf2 and matplotlib) and a later one."""
    from ringscope.app.dashboard import cases, evidence_pack

    cases.update_case(store, "bench", "Finding", ring, status="In progress", assignee="bench")
    first = None
    for i in range(20):
        key = cases.add_note(
            store, "bench", "Finding", ring, f"第 {i} 条备注：电话 1380013{i:04d} 未接通", reply_to=first
        )
        first = first or key
    timings, size = [], 0
    for _ in range(2):
        started = time.perf_counter()
        pdf = evidence_pack.evidence_pack(store, f"case:Finding:{ring}", user="bench", index=index, members=members)
        timings.append(time.perf_counter() - started)
        size = len(pdf)
    return [
        (f"evidence-pack PDF, 500-node ring ({size / 1024:.0f} KiB), first in the process", 5.0, timings[0]),
        ("evidence-pack PDF, 500-node ring, later ones", 5.0, timings[1]),
    ]


def _bulk_findings(store, n: int, members_per: int = 5, seed: int = 1) -> None:
    """``n`` synthetic findings over the store's applications; one in five
    shares 3 of its 5 applications with the finding before it, so about a
    fifth of the queue is nested under a stronger finding (issue 14 saw 23%)."""
    import numpy as np
    import pandas as pd

    from ringscope.graph.store import GraphBatch

    rng = np.random.default_rng(seed)
    apps = store.read_nodes("Application", [])["key"].to_numpy()
    keys = [f"bulk-{i:06d}" for i in range(n)]
    picks = rng.integers(0, len(apps), size=(n, members_per))
    echo = np.arange(n) % 5 == 4
    picks[echo, :3] = picks[np.flatnonzero(echo) - 1, :3]
    findings = pd.DataFrame(
        {
            "key": keys,
            "detector": rng.choice(["shared_identifier_rings", "guarantee_circles", "device_velocity"], n),
            "kind": rng.choice(["ring", "guarantee_circle", "device_burst"], n),
            "score": rng.random(n).round(4),
            "size": members_per,
            "summary": [f"synthetic finding {i}" for i in range(n)],
            "evidence": json.dumps(
                [{"feature": "ring_size", "contribution": 0.4, "detail": "5 distinct applicants", "values": [5]}]
            ),
            "parameters": "{}",
            "run_at": "2025-06-01T00:00:00Z",
        }
    )
    rel = pd.DataFrame({"src": np.repeat(keys, members_per), "dst": apps[picks.ravel()], "role": "member"})
    store.replace_derived(
        GraphBatch(
            nodes={"Finding": findings},
            relationships={"Finding-INVOLVES-Application": rel.drop_duplicates(["src", "dst"])},
        )
    )


def _apptest(page: str, finding: str | None = None):
    """Run the app once on ``page`` and return (AppTest, seconds of that run).

    The queue is the default page, so it is timed on the first run; other
    pages are reached with ``switch_page`` and timed on that run."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["user"] = {"name": "bench", "role": "admin"}
    if finding:
        at.session_state["finding"] = finding
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if page != "pages/queue.py":
        at.switch_page(page)
        started = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - started
    assert not at.exception, at.exception
    return at, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--store",
        default="/tmp/s20k" if Path("/tmp/s20k/store.json").exists() else None,
        help="embedded store to copy (default: /tmp/s20k if present, else generate 20k)",
    )
    parser.add_argument("--findings", type=int, default=10_000)
    args = parser.parse_args()

    import streamlit as st

    from ringscope.app.dashboard import graphview, ring_view, services
    from ringscope.app.dashboard.ring_layout import READABLE_FONT

    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        store = _store(args.store, work)
        _bulk_findings(store, args.findings)
        ring = _ring(store)
        os.environ["RINGSCOPE_STORE"] = str(store.path)
        os.environ.pop("RINGSCOPE_NEO4J_URI", None)
        n_apps = store.counts().nodes["Application"]

        rows = []
        st.cache_data.clear()
        st.cache_resource.clear()
        _, first = _apptest("pages/queue.py")  # imports Streamlit's chart stack once per process
        colds = []
        for _ in range(3):  # the best of three: the machine is shared
            st.cache_data.clear()
            st.cache_resource.clear()
            colds.append(_apptest("pages/queue.py")[1])
        cold = min(colds)
        _, warm = _apptest("pages/queue.py")
        at, warm2 = _apptest("pages/queue.py")
        shown = at.metric[0].value
        started = time.perf_counter()
        table = services.findings_table(store)
        t_prep = time.perf_counter() - started
        nested = int(table["parent"].notna().sum())
        rows.append((f"queue first view, {args.findings:,} findings (issue 14: new session, caches cold)", 1.0, cold))
        rows.append((f"queue, {args.findings:,} findings (cached: every later view)", 1.0, min(warm, warm2)))
        rows.append((f"queue data prep (columnar; {nested:,} nested under a stronger finding)", None, t_prep))
        rows.append(("queue, first view after the server started (imports)", None, first))

        started = time.perf_counter()
        index = services.build_index(store)
        t_index = time.perf_counter() - started
        members = services.finding_members(store)
        started = time.perf_counter()
        view = services.cluster_subgraph(store, index, members, ring)
        props = services.view_properties(store, list(view.nodes))
        payload = graphview.build_payload(view, props)
        json.dumps(payload.elements)
        t_service = time.perf_counter() - started
        # the same ring laid out in Python (concentric around what it shares) with a label
        # size per node, as the explorer draws it
        started = time.perf_counter()
        view = services.cluster_subgraph(store, index, members, ring)
        props = services.view_properties(store, list(view.nodes))
        record = ring_view.finding_record(store, ring)
        captions = {n: graphview.caption(*services.split_node_id(n), props.get(n, {})) for n in view.nodes}
        laid, layout = ring_view.arrange(view, record["kind"], record["evidence"], props, captions)
        drawn = graphview.build_payload(laid, props, layout=layout)
        json.dumps({"elements": drawn.elements, "layout": graphview.layout_options(drawn)})
        t_labels = time.perf_counter() - started
        members_in_view = sum(1 for r in laid.nodes.values() if r == "member")
        member_fonts = [n["data"]["fs"] for n in drawn.elements["nodes"] if n["data"]["role"] == "member"]
        readable = sum(1 for f in member_fonts if f >= READABLE_FONT)
        # every member label is drawn; cytoscape shows each once it is READABLE_FONT px on screen
        zoom_all = READABLE_FONT / min(member_fonts) if member_fonts else 1.0
        _apptest("pages/cluster.py", finding="bulk-000000")  # imports the component once
        st.cache_data.clear()
        st.cache_resource.clear()
        at, ring_cold = _apptest("pages/cluster.py", finding=ring)
        at2, ring_warm = _apptest("pages/cluster.py", finding=ring)
        nodes = len(json.loads(at2.get("component_instance")[0].proto.json_args)["elements"]["nodes"])
        rows.append((f"ring of {len(view.nodes)} nodes, {len(view.edges)} links: services + payload", 2.0, t_service))
        rows.append(
            (
                f"{len(laid.nodes)}-node ring, {layout.name}, {members_in_view} member labels "
                f"({readable} readable whole, all at zoom x{zoom_all:.1f})",
                2.0,
                t_labels,
            )
        )
        rows.append((f"ring page ({nodes} nodes), AppTest (cached)", 2.0, ring_warm))
        rows.append(("ring page, AppTest (cold: also builds the graph index)", 2.0, ring_cold))
        rows.append((f"graph index over {n_apps:,} applications (once per data version)", None, t_index))
        rows += _evidence_pack_rows(store, ring, index, members)

        print(f"\nDashboard bench: {n_apps:,} applications, {shown} findings in the queue\n")
        print(f"{'measure':<84} {'target':>8} {'measured':>9}  ok")
        for name, target, seconds in rows:
            ok = "" if target is None else ("yes" if seconds <= target else "NO")
            tgt = "" if target is None else f"{target:.1f} s"
            print(f"{name:<84} {tgt:>8} {seconds:>7.2f} s  {ok}")
        return 0 if all(t is None or s <= t for _, t, s in rows) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
