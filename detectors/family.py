"""Who is family: relations, surnames and homes in the emergency-contact graph.

Families name each other as emergency contacts as a matter of course; a
fraud ring names each other to look reachable. What tells them apart here is
the relation the applicant gave (the data contract's ``relation``), backed
by a shared surname (compound surnames such as 欧阳 included) or one home
typed differently (:func:`home_keys`), or answered in kind (spouse ↔ spouse,
parent ↔ child). :mod:`~ringscope.detectors.contacts` discounts family loops
and hubs with it; :mod:`~ringscope.detectors.rings` recognises households.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ringscope.detectors.keys import is_missing

__all__ = [
    "FAMILY_RELATIONS",
    "family_consistency",
    "family_edges",
    "family_hub_edges",
    "family_of_links",
    "family_of_namings",
    "home_keys",
    "home_keys_of",
    "is_family",
    "surnames",
    "surnames_of",
]

#: relations that make naming each other ordinary (English contract values and common Chinese forms)
FAMILY_RELATIONS = frozenset(
    {
        "spouse",
        "husband",
        "wife",
        "parent",
        "father",
        "mother",
        "child",
        "son",
        "daughter",
        "sibling",
        "brother",
        "sister",
        "relative",
        "family",
        "配偶",
        "夫妻",
        "丈夫",
        "妻子",
        "老公",
        "老婆",
        "父母",
        "父亲",
        "母亲",
        "爸爸",
        "妈妈",
        "子女",
        "儿子",
        "女儿",
        "兄弟姐妹",
        "兄弟",
        "姐妹",
        "哥哥",
        "姐姐",
        "弟弟",
        "妹妹",
        "亲属",
        "亲戚",
        "家人",
    }
)
_COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "夏侯",
    "令狐",
    "司徒",
)


#: up to this many values, :func:`surnames` and :func:`home_keys` work in Python (the same
#: functions of each value; pandas' string methods cost a millisecond each whatever their size)
_FEW_TEXTS = 2_000


def _surname_of(name: str) -> str:
    name = name.strip()
    return name[:2] if name[:2] in _COMPOUND_SURNAMES else name[:1]


def _home_key_of(address: str) -> str:
    groups = re.findall(r"\d+", address)
    if len(groups) >= 3:
        return "#" + "|".join(g.lstrip("0") or "0" for g in groups)
    return re.sub(r"\s+", "", address)


def surnames_of(names: list) -> list:
    """:func:`surnames` of a list, missing ones as ``None``.

    >>> surnames_of(["欧阳娜娜", " 王伟", None, " "])
    ['欧阳', '王', None, None]
    """
    return [None if is_missing(v) else _surname_of(str(v)) or None for v in names]


def home_keys_of(addresses: list) -> list:
    """:func:`home_keys` of a list, missing ones as ``None``.

    >>> home_keys_of(["幸福路 1号2栋3室", "人民路 9号", None])
    ['#1|2|3', '人民路9号', None]
    """
    return [None if is_missing(v) else _home_key_of(str(v)) or None for v in addresses]


def surnames(names: pd.Series) -> pd.Series:
    """Each name's surname (a compound one such as 欧阳 whole; missing for an empty name).

    >>> surnames(pd.Series(["欧阳娜娜", "王伟", None])).tolist()
    ['欧阳', '王', nan]
    """
    if len(names) <= _FEW_TEXTS:
        values = [_surname_of("" if is_missing(v) else str(v)) for v in names.tolist()]
        return pd.Series(np.array(values, dtype=object), index=names.index).replace("", pd.NA)
    s = names.astype(object).where(names.notna(), "").astype(str).str.strip()
    two = s.str[:2]
    return pd.Series(np.where(two.isin(_COMPOUND_SURNAMES), two, s.str[:1]), index=names.index).replace("", pd.NA)


def home_keys(addresses: pd.Series) -> pd.Series:
    """A key equal for one home typed differently (路/道, with or without 省/市): its
    house, building, unit and room numbers when it has at least three, else the text."""
    if len(addresses) <= _FEW_TEXTS:
        values = [_home_key_of("" if is_missing(v) else str(v)) for v in addresses.tolist()]
        return pd.Series(np.array(values, dtype=object), index=addresses.index).replace("", pd.NA)
    text = addresses.astype(object).where(addresses.notna(), "").astype(str)
    digits = text.str.findall(r"\d+").map(
        lambda groups: "#" + "|".join(g.lstrip("0") or "0" for g in groups) if len(groups) >= 3 else ""
    )
    key = digits.where(digits != "", text.str.replace(r"\s+", "", regex=True))
    return key.replace("", pd.NA)


_COLLEAGUE = frozenset({"colleague", "coworker", "同事", "领导", "上司"})
_RECIPROCAL = {"spouse": "spouse", "parent": "child", "child": "parent", "sibling": "sibling"}


def family_consistency(edges: pd.DataFrame, apps: pd.DataFrame) -> np.ndarray:
    """How much each naming edge looks like family: the test loops and households use.

    1 for a family relation (:data:`FAMILY_RELATIONS`) backed by a shared
    surname or home (address key: one home typed differently still matches),
    0.5 for a family relation answered in kind (spouse ↔ spouse, parent ↔
    child) without that, else 0.

    Parameters
    ----------
    edges : DataFrame
        ``src``, ``dst``, ``phone``, ``relation`` (:func:`contact_edges`).
    apps : DataFrame
        Indexed by application id, with ``applicant_name`` and ``address``;
        must hold every ``src`` and ``dst``.

    Returns
    -------
    Array of floats aligned with ``edges``.

    Example
    -------
    >>> apps = pd.DataFrame({"applicant_name": ["王伟", "李娜", "赵强"],
    ...                      "address": ["幸福路1号2栋3室", "幸福路1号2栋3室", "人民路9号"]}, index=["a", "b", "c"])
    >>> edges = pd.DataFrame({"src": ["b", "c"], "dst": ["a", "a"], "phone": ["p1", "p1"],
    ...                       "relation": ["配偶", "friend"]})
    >>> family_consistency(edges, apps).tolist()
    [1.0, 0.0]
    """
    info = pd.DataFrame(
        {
            "surname": surnames(apps["applicant_name"]).to_numpy(),
            "address_key": home_keys(apps["address"]).to_numpy(),
        },
        index=apps.index,
    )
    return family_edges(edges, info)


def is_family(relation: pd.Series) -> np.ndarray:
    """Is each relation a family one (:data:`FAMILY_RELATIONS`, case and spaces ignored)?"""
    return relation.fillna("").astype(str).str.strip().str.lower().isin(FAMILY_RELATIONS).to_numpy()


def family_edges(edges: pd.DataFrame, info: pd.DataFrame) -> np.ndarray:
    """1 for a family relation backed by a shared surname or home, 0.5 for a family
    relation answered in kind (spouse ↔ spouse, parent ↔ child) without that, else 0."""
    s_src = info["surname"].reindex(edges["src"]).to_numpy()
    s_dst = info["surname"].reindex(edges["dst"]).to_numpy()
    a_src = info["address_key"].reindex(edges["src"]).to_numpy()
    a_dst = info["address_key"].reindex(edges["dst"]).to_numpy()
    same_surname = pd.notna(s_src) & (s_src == s_dst)
    same_address = pd.notna(a_src) & (a_src == a_dst)
    family = is_family(edges["relation"])
    rel = edges["relation"].fillna("").astype(str).str.strip().str.lower()
    answered = _answered_in_kind(edges, rel)
    if answered is None:
        answered = _answered_in_kind_joined(edges, rel)
    strong = family & (same_surname | same_address)
    return np.where(strong, 1.0, np.where(family & answered, 0.5, 0.0))


#: up to this many edges, :func:`_answered_in_kind` matches them in Python (a pandas merge costs
#: milliseconds of overhead whatever its size; a scope's few edges cost microseconds)
_FEW_EDGES = 5_000


def _answered_in_kind(edges: pd.DataFrame, rel: pd.Series) -> np.ndarray | None:
    """For each edge of ``edges`` (first of its ``src``, ``dst``, ``phone``),
    whether the other side names it back with the reciprocal relation
    (:data:`_RECIPROCAL` of ``rel``): :func:`_answered_in_kind_joined` with
    sets, for a few edges without missing ends (``None`` otherwise).

    Example
    -------
    >>> edges = pd.DataFrame({"src": ["a", "b", "a"], "dst": ["b", "a", "c"], "phone": ["p", "q", "r"]})
    >>> _answered_in_kind(edges, pd.Series(["parent", "child", "parent"])).tolist()
    [True, True, False]
    """
    if len(edges) > _FEW_EDGES:
        return None
    src = edges["src"].to_numpy(dtype=object)
    dst = edges["dst"].to_numpy(dtype=object)
    phone = edges["phone"].to_numpy(dtype=object)
    if pd.isna(src).any() or pd.isna(dst).any() or pd.isna(phone).any():
        return None  # a join matches missing keys with each other: leave those to it
    relation = rel.to_numpy(dtype=object)
    back = rel.map(_RECIPROCAL).to_numpy(dtype=object)
    backs = {(d, s, b) for s, d, b in zip(src.tolist(), dst.tolist(), back.tolist()) if isinstance(b, str)}
    seen: set = set()
    out = []
    for s, d, p, r in zip(src.tolist(), dst.tolist(), phone.tolist(), relation.tolist()):
        if (s, d, p) in seen:
            continue
        seen.add((s, d, p))
        out.append((s, d, r) in backs)
    return np.array(out, dtype=bool)


def _answered_in_kind_joined(edges: pd.DataFrame, rel: pd.Series) -> np.ndarray:
    """:func:`_answered_in_kind` as one join, for any number of edges."""
    back = pd.DataFrame(
        {"src": edges["dst"].to_numpy(), "dst": edges["src"].to_numpy(), "back": rel.map(_RECIPROCAL).to_numpy()}
    )
    answered = edges.assign(rel=rel.to_numpy()).merge(
        back.dropna().drop_duplicates(["src", "dst", "back"]),
        left_on=["src", "dst", "rel"],
        right_on=["src", "dst", "back"],
        how="left",
        indicator=True,
    )
    return answered.drop_duplicates(["src", "dst", "phone"])["_merge"].eq("both").to_numpy()


def family_hub_edges(edges: pd.DataFrame, info: pd.DataFrame, owners: pd.DataFrame) -> np.ndarray:
    """Family relation and a surname or address the namer shares with the contact or with another namer:
    1 for that, 0.5 for colleagues of one employer naming one phone, else 0."""
    if len(edges) <= _FEW_EDGES:
        return _family_hub_edges_few(edges, info, owners)
    return _family_hub_edges_grouped(edges, info, owners)


def _relation_in(relation: pd.Series, wanted: frozenset) -> np.ndarray:
    """``relation.fillna("").astype(str).str.strip().str.lower().isin(wanted)``, in Python."""
    return np.array(
        [("" if is_missing(v) else str(v)).strip().lower() in wanted for v in relation.tolist()], dtype=bool
    )


def _shared_by(phone: list, key: list, identity: list) -> np.ndarray:
    """Per row, whether two or more distinct identities share its (phone, key)
    (``groupby([phone, key])[identity].transform("nunique") >= 2``: a missing
    key is in no group, a missing identity is not counted)."""
    groups: dict = {}
    for p, k, i in zip(phone, key, identity):
        if not (is_missing(p) or is_missing(k) or is_missing(i)):
            groups.setdefault((p, k), set()).add(i)
    return np.array(
        [not (is_missing(p) or is_missing(k)) and len(groups.get((p, k), ())) >= 2 for p, k in zip(phone, key)],
        dtype=bool,
    )


def _family_hub_edges_few(edges: pd.DataFrame, info: pd.DataFrame, owners: pd.DataFrame) -> np.ndarray:
    """:func:`family_hub_edges` of a few edges with dicts and sets (its
    groupbys and merge cost milliseconds of overhead whatever their size)."""
    apps = pd.Index(edges["application_id"].to_numpy(dtype=object), dtype=object)
    owner_address = info["address_key"].reindex(pd.Index(owners["owner_app"].to_numpy(dtype=object), dtype=object))
    return np.array(
        family_of_namings(
            edges["phone"].tolist(),
            edges["identity"].tolist(),
            edges["relation"].tolist(),
            edges["contact_name"].tolist(),
            info["surname"].reindex(apps).tolist(),
            info["address_key"].reindex(apps).tolist(),
            info["employer"].reindex(apps).tolist(),
            set(zip(owners["phone"].tolist(), owner_address.tolist())),
        ),
        dtype=float,
    )


def family_of_namings(
    phone: list,
    identity: list,
    relation: list,
    contact_name: list,
    surname: list,
    home: list,
    employer: list,
    homes: set,
) -> list[float]:
    """:func:`family_hub_edges` on lists, one entry per naming of a hub
    phone: its phone, the namer's identity, the relation and the contact's
    name given, the namer's surname, home key and employer, and ``homes``
    the (phone, home key) pairs of the phones' own applicants (missing
    values: ``None`` or ``nan``, matching nothing).

    >>> family_of_namings(["p", "p"], ["A", "B"], ["配偶", "friend"], ["王伟", None], ["王", "李"], [None, "h"],
    ...                   [None, None], set())
    [1.0, 0.0]
    """
    contact_surname = surnames_of(contact_name)
    by_surname = _shared_by(phone, surname, identity)
    by_home = _shared_by(phone, home, identity)
    by_employer = _shared_by(phone, employer, identity)
    homes = {(p, a) for p, a in homes if not (is_missing(p) or is_missing(a))}
    out = []
    for i, (p, r) in enumerate(zip(phone, relation, strict=True)):
        rel = "" if is_missing(r) else str(r).strip().lower()
        same_contact = contact_surname[i] is not None and surname[i] == contact_surname[i]
        same_owner_home = not is_missing(home[i]) and (p, home[i]) in homes
        if rel in FAMILY_RELATIONS and (same_contact or by_surname[i] or by_home[i] or same_owner_home):
            out.append(1.0)
        else:  # colleagues of one employer naming their manager: ordinary, but easy to fake, so half
            out.append(0.5 if rel in _COLLEAGUE and by_employer[i] else 0.0)
    return out


def family_of_links(links: list[tuple], surname: dict, home: dict) -> list[float]:
    """:func:`family_edges` on lists: ``links`` (src, dst, phone, relation),
    unique by (src, dst, phone); ``surname`` and ``home`` (key) by
    application, missing ones ``None`` or ``nan``.

    >>> family_of_links([("a", "b", "p", "配偶"), ("b", "a", "q", "spouse"), ("a", "c", "r", "spouse")],
    ...                 {"a": "王", "b": "王", "c": "李"}, {})
    [1.0, 1.0, 0.0]
    """
    rel = ["" if is_missing(r) else str(r).strip().lower() for _, _, _, r in links]
    backs = {(d, s, _RECIPROCAL[r]) for (s, d, _, _), r in zip(links, rel, strict=True) if r in _RECIPROCAL}
    out = []
    for (s, d, _, _), r in zip(links, rel, strict=True):
        if r not in FAMILY_RELATIONS:
            out.append(0.0)
            continue
        same_surname = not is_missing(surname.get(s)) and surname.get(s) == surname.get(d)
        same_home = not is_missing(home.get(s)) and home.get(s) == home.get(d)
        out.append(1.0 if same_surname or same_home else 0.5 if (s, d, r) in backs else 0.0)
    return out


def _family_hub_edges_grouped(edges: pd.DataFrame, info: pd.DataFrame, owners: pd.DataFrame) -> np.ndarray:
    """:func:`family_hub_edges` with pandas' groupbys and merge, for any number of edges."""
    frame = edges.assign(
        surname=info["surname"].reindex(edges["application_id"]).to_numpy(),
        address=info["address_key"].reindex(edges["application_id"]).to_numpy(),
    )
    contact_surname = surnames(frame["contact_name"]).to_numpy()
    same_contact = pd.notna(contact_surname) & (frame["surname"].to_numpy() == contact_surname)
    by_surname = frame.groupby(["phone", "surname"])["identity"].transform("nunique").to_numpy() >= 2
    by_address = frame.groupby(["phone", "address"])["identity"].transform("nunique").to_numpy() >= 2
    owner_addr = owners.assign(owner_address=info["address_key"].reindex(owners["owner_app"]).to_numpy())
    owner_addr = owner_addr.dropna(subset=["owner_address"])[["phone", "owner_address"]].drop_duplicates()
    # a spouse or child naming the phone's own applicant at the same address
    numbered = frame.reset_index(drop=True).assign(_i=np.arange(len(frame)))
    hits = numbered.merge(owner_addr, on="phone")
    hit_rows = hits.loc[hits["address"].notna() & (hits["address"] == hits["owner_address"]), "_i"].unique()
    same_owner_address = np.zeros(len(frame), dtype=bool)
    same_owner_address[hit_rows] = True
    family = is_family(frame["relation"]) & (same_contact | by_surname | by_address | same_owner_address)
    # colleagues of one employer naming their manager: ordinary, but easy to fake, so half
    employer = info["employer"].reindex(edges["application_id"]).to_numpy()
    frame = frame.assign(employer=employer)
    by_employer = frame.groupby(["phone", "employer"])["identity"].transform("nunique").to_numpy() >= 2
    colleague = frame["relation"].fillna("").astype(str).str.strip().str.lower().isin(_COLLEAGUE).to_numpy()
    return np.where(family, 1.0, np.where(colleague & by_employer, 0.5, 0.0))
