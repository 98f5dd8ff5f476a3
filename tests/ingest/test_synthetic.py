"""The generator keeps its promises: contract columns, valid checksums where
meant, planted rates, truth consistent with the tables, determinism."""

from __future__ import annotations

import hashlib

import networkx as nx
import pandas as pd
import pytest
from stdnum.cn import ric, uscc

from ringscope.ingest.normalize import normalize_addresses, normalize_id_numbers, normalize_phones
from ringscope.ingest.pipeline import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from ringscope.ingest.synthetic import HARD_NEGATIVES, TYPOLOGIES, GeneratorConfig, generate_portfolio

N = 5_000
CONFIG = GeneratorConfig(applications=N, seed=42)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    out = tmp_path_factory.mktemp("portfolio")
    summary = generate_portfolio(CONFIG, out)
    read = lambda name: pd.read_csv(out / name, dtype=str, keep_default_na=False)  # noqa: E731
    tables = {t: read(f"{t}.csv") for t in REQUIRED_COLUMNS}
    tables["truth"] = read("truth/applications.csv")
    tables["rings"] = read("truth/rings.csv")
    tables["circles"] = read("truth/guarantee_circles.csv")
    tables["broken"] = read("truth/broken_rows.csv")
    return out, summary, tables


def _sha(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.csv")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_tables_have_exactly_the_contract_columns(portfolio):
    _, _, t = portfolio
    for table in REQUIRED_COLUMNS:
        assert set(t[table].columns) == set(REQUIRED_COLUMNS[table]) | set(OPTIONAL_COLUMNS[table]), table


def test_resident_ids_valid_except_where_planted_broken(portfolio):
    _, _, t = portfolio
    apps = t["applications"].merge(t["truth"], on="application_id")
    cleaned = (
        apps["applicant_id_number"]
        .str.replace(" ", "")
        .map(lambda s: s.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    )
    valid = cleaned.map(ric.is_valid)
    honest = apps["typology"] != "synthetic_identity"
    assert valid[honest].mean() > 0.999
    # near-miss identities exist and fail the checksum
    assert (~valid[~honest]).sum() > 0
    # lower-case x appears as mess but still validates once upper-cased
    lower = cleaned.str.endswith("x")
    assert lower.any() and cleaned[lower].str.upper().map(ric.is_valid).all()


def test_usccs_are_valid(portfolio):
    _, _, t = portfolio
    codes = t["applications"]["company_uscc"]
    codes = codes[codes != ""]
    assert len(codes) > N * 0.3
    assert codes.map(uscc.is_valid).all()
    guarantor_companies = t["guarantees"].query("guarantor_type == 'company'")["guarantor_id"]
    assert guarantor_companies.map(uscc.is_valid).all()


def test_typology_rates_within_tolerance(portfolio):
    _, summary, t = portfolio
    truth = t["truth"]
    business = (t["applications"].drop_duplicates("application_id")["company_uscc"] != "").sum()
    for typology, rate in CONFIG.rates.items():
        share = (truth["typology"] == typology).mean()
        if typology == "guarantee_circle":  # a share of business borrowers, plus chains
            share = (truth["typology"] == typology).sum() / business
        assert rate * 0.6 <= share <= rate * 1.6, (typology, share, rate)
        assert summary.planted[typology] == (truth["typology"] == typology).sum()
    assert set(truth["typology"].unique()) - {""} <= set(TYPOLOGIES)


def test_every_truth_row_is_an_application_and_vice_versa(portfolio):
    _, _, t = portfolio
    assert set(t["truth"]["application_id"]) == set(t["applications"]["application_id"])
    fraud = t["truth"]["is_fraud"].astype(int)
    assert ((fraud == 1) == (t["truth"]["typology"] != "")).all()


def test_identity_ring_members_share_an_identifier(portfolio):
    _, _, t = portfolio
    apps = t["applications"].drop_duplicates("application_id").merge(t["truth"], on="application_id")
    # compare as ringscope will: after normalisation (the generator adds mess)
    apps["phone_key"] = normalize_phones(apps["applicant_phone"])["phone"]
    apps["applicant_address"] = normalize_addresses(apps["applicant_address"])["address"]
    contacts = t["contacts"].groupby("application_id")["contact_phone"].apply(set)
    rings = apps[apps["typology"] == "identity_ring"].groupby("ring_id")
    assert rings.ngroups > 0
    for _, ring in rings:
        for _, member in ring.iterrows():
            others = ring[ring["application_id"] != member["application_id"]]
            shares = (
                (others["phone_key"] == member["phone_key"]).any()
                or (others["device_id"] == member["device_id"]).any()
                or (others["bank_account"] == member["bank_account"]).any()
                or (others["applicant_address"] == member["applicant_address"]).any()
                or any(
                    contacts.get(member["application_id"], set()) & contacts.get(o, set())
                    for o in others["application_id"]
                )
            )
            assert shares, member["application_id"]


def test_every_ring_is_linked_by_what_its_typology_shares(portfolio):
    """Members of each planted ring share the typology's identifier with another member."""
    _, _, t = portfolio
    apps = t["applications"].drop_duplicates("application_id").merge(t["truth"], on="application_id")
    contacts = t["contacts"].merge(apps[["application_id", "ring_id"]], on="application_id")
    phone_key = normalize_phones(contacts["contact_phone"])["phone"]
    contacts = contacts.assign(phone_key=phone_key)
    applicant_phones = set(normalize_phones(apps["applicant_phone"])["phone"].dropna())
    checks = {
        "device_farm": lambda r: r["ip"].str.rsplit(".", n=1).str[0].nunique() == 1 and r["device_id"].nunique() <= 3,
        "broker_ring": lambda r: r["agent_id"].nunique() == 1 and r["channel"].eq("agent").all(),
        "synthetic_identity": lambda r: (
            normalize_id_numbers(r["applicant_id_number"])["id_number"].str[:15].nunique() == 1
        ),
        "contact_loop": lambda r: set(contacts.loc[contacts["ring_id"] == r.name, "phone_key"]) & applicant_phones,
    }
    for typology, check in checks.items():
        rings = apps[apps["typology"] == typology].groupby("ring_id")
        assert rings.ngroups > 0, typology
        for ring_id, ring in rings:
            ring.name = ring_id
            assert check(ring), (typology, ring_id)


def test_planted_fraud_is_not_marked_in_the_data(portfolio):
    """No column gives fraud away on its own: agent ids, channels, id order look like the honest book's."""
    _, _, t = portfolio
    apps = t["applications"].drop_duplicates("application_id").merge(t["truth"], on="application_id")
    brokers = apps.loc[apps["typology"] == "broker_ring", "agent_id"]
    honest_agents = apps.loc[(apps["typology"] == "") & (apps["agent_id"] != ""), "agent_id"]
    assert set(brokers) <= set(honest_agents) or brokers.str.len().eq(honest_agents.str.len().iloc[0]).all()
    # application ids follow submission time for everyone, bursts included
    valid = apps[apps["applied_at"].str.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")]
    ordered = valid.sort_values("application_id")["applied_at"]
    assert ordered.is_monotonic_increasing


def test_guarantee_circles_are_directed_cycles(portfolio):
    _, _, t = portfolio
    apps = t["applications"].drop_duplicates("application_id").set_index("application_id")
    g = t["guarantees"]
    borrower = apps["company_uscc"].where(apps["company_uscc"] != "", apps["applicant_id_number"])
    graph = nx.DiGraph()
    graph.add_edges_from(zip(g["guarantor_id"], borrower.reindex(g["application_id"]).to_numpy()))
    assert len(t["circles"]) > 0
    for _, circle in t["circles"].iterrows():
        members = circle["members"].split("|")
        assert len(members) == int(circle["cycle_length"])
        for a, b in zip(members, members[1:] + members[:1]):
            # each member is guaranteed by the next one
            assert graph.has_edge(b, a), (b, a)


def test_hard_negatives_present_and_honest(portfolio):
    _, summary, t = portfolio
    truth = t["truth"]
    for kind in HARD_NEGATIVES:
        assert (truth["hard_negative"] == kind).sum() > 0, kind
    assert (truth.loc[truth["hard_negative"] != "", "typology"] == "").all()
    assert (truth.loc[truth["hard_negative"] != "", "is_fraud"].astype(int) == 0).all()
    apps = t["applications"].drop_duplicates("application_id").merge(truth, on="application_id")
    labeled = apps[(apps["hard_negative"] != "") & (apps["label"] != "")]
    assert (labeled["label"] == "good").mean() > 0.9  # honest: at most the base default rate
    families = apps[apps["hard_negative"] == "family"]
    assert families["applicant_address"].duplicated().sum() > 0 and families["ip"].duplicated().sum() > 0
    towers = apps[apps["hard_negative"] == "office_tower"]["company_address"].str.extract(r"^(.*?[园厦场])")[0]
    assert towers.value_counts().iloc[0] > 10  # many firms in one building
    assert apps[apps["hard_negative"] == "busy_agent"]["agent_id"].value_counts().iloc[0] > 30
    nat = t["applications"].merge(truth, on="application_id").query("hard_negative == 'carrier_nat'")
    assert nat["ip"].value_counts().iloc[0] > 20  # one IP shared by many honest people


def test_broken_rows_are_present_and_listed(portfolio):
    _, summary, t = portfolio
    assert summary.broken_rows == len(t["broken"]) > 0
    apps = t["applications"]
    duplicated = apps["application_id"].duplicated(keep=False)
    listed_dups = t["broken"].query("reason.str.startswith('duplicate')", engine="python")
    assert set(listed_dups["application_id"]) == set(apps.loc[duplicated, "application_id"])
    for _, row in t["broken"].iterrows():
        line = apps.iloc[int(row["line"]) - 2]  # line 1 is the header
        assert line["application_id"] == row["application_id"]
        if row["reason"].startswith("missing required value: "):
            assert line[row["reason"].split(": ")[1]] == ""
        elif row["reason"] == "bad amount":
            assert not line["amount"].lstrip("-").isdigit() or int(line["amount"]) <= 0
    assert len(set(t["broken"]["reason"].str.split(":").str[0])) >= 3


def test_labels_only_for_old_applications(portfolio):
    _, _, t = portfolio
    broken = set(t["broken"]["application_id"])
    apps = t["applications"][~t["applications"]["application_id"].isin(broken)]
    recent = apps["applied_at"] >= "2026-05-01"
    assert (apps.loc[recent, "label"] == "").all()
    assert set(apps.loc[~recent, "label"]) <= {"good", "default", "fraud"}
    assert (apps.loc[~recent, "label"] != "").all()


def test_same_seed_same_bytes_other_seed_differs(tmp_path, portfolio):
    out, _, _ = portfolio
    again = tmp_path / "again"
    generate_portfolio(CONFIG, again)
    assert _sha(again) == _sha(out)
    other = tmp_path / "other"
    generate_portfolio(GeneratorConfig(applications=N, seed=43), other)
    assert _sha(other) != _sha(out)


def test_summary_lists_what_it_wrote(portfolio):
    out, summary, t = portfolio
    for name, path in summary.paths.items():
        assert (out / f"{name}.csv").exists() and path.endswith(f"{name}.csv")
    assert summary.row_counts["applications"] == len(t["applications"])
    assert summary.rings["identity_ring"] == (t["rings"]["typology"] == "identity_ring").sum() > 0


def test_parquet_output_has_the_same_columns(tmp_path):
    out = tmp_path / "pq"
    summary = generate_portfolio(GeneratorConfig(applications=400, seed=3, file_format="parquet"), out)
    apps = pd.read_parquet(out / "applications.parquet")
    assert len(apps) == summary.row_counts["applications"]
    assert list(apps.columns) == list(REQUIRED_COLUMNS["applications"]) + list(OPTIONAL_COLUMNS["applications"])


def test_gb18030_output_is_gb18030(tmp_path):
    out = tmp_path / "gb"
    generate_portfolio(GeneratorConfig(applications=300, seed=1, encoding="gb18030"), out)
    raw = (out / "applications.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "经营贷" in raw.decode("gb18030") or "消费贷" in raw.decode("gb18030")


def test_bad_config_fails_early_with_a_clear_message():
    with pytest.raises(
        ValueError, match="The 'applications' parameter of GeneratorConfig must be an int >= 10. Got 3 instead."
    ):
        GeneratorConfig(applications=3)
    with pytest.raises(ValueError, match="'device_farms'"):
        GeneratorConfig(device_farms=0.9)


def test_switching_a_typology_off_plants_none(tmp_path):
    summary = generate_portfolio(GeneratorConfig(applications=2_000, seed=5, broker_rings=0.0), tmp_path / "off")
    assert summary.planted["broker_ring"] == 0
    assert summary.planted["identity_ring"] > 0
