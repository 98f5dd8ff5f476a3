"""The seven planted fraud typologies, each on its own rate, the way the fraud works.

Each typology takes disjoint, randomly chosen honest applications and rewrites
only what the fraud changes, so members look like everyone else apart from
the links between them. All groups of a typology are planted at once with
array operations (``Groups``), never one ring at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ringscope.ingest.synthetic import people as P
from ringscope.ingest.synthetic import pools
from ringscope.ingest.synthetic.book import Book, Groups
from ringscope.ingest.synthetic.honest import agent_pool

__all__ = ["plant_fraud"]


def plant_fraud(book: Book) -> None:
    """Plant every typology whose rate is > 0."""
    rates = book.config.rates
    _identity_rings(book, rates["identity_ring"])
    _device_farms(book, rates["device_farm"])
    _synthetic_identities(book, rates["synthetic_identity"])
    _contact_loops(book, rates["contact_loop"])
    _broker_rings(book, rates["broker_ring"])
    _guarantee_circles(book, rates["guarantee_circle"])
    _cashflow_inconsistency(book, rates["cashflow_inconsistency"])
    book.cols["is_bad"][book.typology != ""] = True


def burst(book: Book, g: Groups, span_seconds: np.ndarray) -> None:
    """Move each group's applications into one window of ``span_seconds`` (per group)."""
    rng, t = book.rng, book.cols["applied_at"]
    start = t[g.rows[g.leader]]  # the leader's honest time: a random day of the two years
    if book.window is not None:  # a chunk: the ring stays inside its time window, so ids keep time order
        window = int((book.window_end - book.window_start) / np.timedelta64(1, "s"))
        span_seconds = np.minimum(span_seconds, window - 1)
    latest = book.window_end - span_seconds.astype("timedelta64[s]") - np.timedelta64(1, "s")
    start = np.minimum(start, latest)
    offsets = (rng.random(len(g.rows)) * span_seconds[g.group]).astype(np.int64)
    t[g.rows] = start[g.group] + offsets.astype("timedelta64[s]")


def _ring_groups(book: Book, rate: float, low: int, high: int) -> Groups:
    """Rings of ``low``–``high`` members on ``rate`` of the book.

    With the config's ``ring_sizes`` the sizes come from there, and the rows
    left over once no further ring of a drawn size fits make one last, smaller
    ring (of at least 2): the rate is met even when it is too small for one
    ring of the drawn size (a small book, a rare typology).
    """
    total = int(rate * book.n)
    if book.config.ring_sizes is None:
        return book.groups(total, low, high)
    low, high = book.config.ring_sizes
    sizes = book.rng.integers(low, high + 1, size=max(total // low, 1) + 1)
    sizes = sizes[np.cumsum(sizes) <= total]
    left = total - int(sizes.sum())
    if left >= 2:
        sizes = np.append(sizes, left)
    return book.groups(total, 2, high, sizes=sizes)


def _spans(book: Book, count: int, typology_spans) -> np.ndarray:
    """Each ring's time spread in seconds: the config's ``ring_span_seconds``
    range (log-uniform), else ``typology_spans()``, the typology's own."""
    if book.config.ring_span_seconds is None:
        return typology_spans()
    low, high = book.config.ring_span_seconds
    return np.round(np.exp(book.rng.uniform(np.log(low), np.log(high), count))).astype(np.int64)


def _identity_rings(book: Book, rate: float) -> None:
    """3–12 different people share some identifiers: each member leaks only a subset
    (each identifier with chance ``reuse_share``, plus one that links it to the previous member)."""
    rng, c = book.rng, book.cols
    g = _ring_groups(book, rate, 3, 12)
    if not g.count:
        return
    m = len(g.rows)
    kinds = ("applicant_phone", "device_id", "bank_account", "applicant_address", "contact")
    shared = {
        "applicant_phone": P.phones(rng, g.count),
        "device_id": P.hex_ids(rng, g.count),
        "bank_account": P.bank_cards(rng, g.count),
        "applicant_address": c["applicant_address"][g.rows[g.leader]],
        "contact": P.phones(rng, g.count),
    }
    leaks = rng.random((m, len(kinds))) < book.config.reuse_share
    # chain the members: each one leaks a kind that its predecessor leaks too,
    # so the ring is connected without anyone sharing everything
    link = rng.integers(0, len(kinds), m)
    leaks[np.arange(m), link] = True
    follower = g.position[1:] > 0
    prev = np.arange(m - 1)[follower]
    leaks[prev, link[1:][follower]] = True
    for j, kind in enumerate(kinds):
        sel = np.flatnonzero(leaks[:, j])
        if kind == "contact":
            surname, given = P.names(rng, rng.random(g.count) < 0.5)
            contact_name = P.cat(surname, given)
            book.add_contacts(
                g.rows[sel],
                contact_name[g.group[sel]],
                shared[kind][g.group[sel]],
                P.pick(rng, ["friend", "colleague", "sibling"], len(sel)),
            )
        else:
            c[kind][g.rows[sel]] = shared[kind][g.group[sel]]
    burst(book, g, _spans(book, g.count, lambda: rng.integers(7, 42, g.count) * 86_400))  # within weeks
    names = np.array(["phone", "device", "bank account", "address", "contact phone"])
    described = [", ".join(names[leaks[g.group == k].any(axis=0)]) for k in range(g.count)]
    book.plant("identity_ring", g, np.char.add("members share some of: ", np.array(described, dtype=str)))


def _device_farms(book: Book, rate: float) -> None:
    """Bursts from 1–3 devices in one IP /24, with otherwise unrelated (stolen) identities.

    With ``rotation`` > 0 some members reset their device (a fresh
    fingerprint) and, independently, come through a proxy outside the range.
    """
    rng, c = book.rng, book.cols
    g = _ring_groups(book, rate, 8, 30)
    if not g.count:
        return
    m = len(g.rows)
    devices = P.hex_ids(rng, g.count * 3).reshape(g.count, 3)
    n_devices = rng.integers(1, 4, g.count)
    c["device_id"][g.rows] = devices[g.group, (rng.random(m) * n_devices[g.group]).astype(int)]
    prefix = np.array([ip.rsplit(".", 1)[0] for ip in P.ipv4(rng, g.count)])
    c["ip"][g.rows] = P.cat(prefix[g.group], ".", rng.integers(2, 254, m))
    c["channel"][g.rows] = "app"
    c["agent_id"][g.rows] = ""
    c["email"][g.rows] = ""  # farms skip optional fields
    if book.config.rotation > 0:
        fresh_device = g.rows[rng.random(m) < book.config.rotation]
        c["device_id"][fresh_device] = P.hex_ids(rng, len(fresh_device))
        fresh_ip = g.rows[rng.random(m) < book.config.rotation]
        c["ip"][fresh_ip] = P.ipv4(rng, len(fresh_ip))
    burst(book, g, _spans(book, g.count, lambda: rng.integers(2, 72, g.count) * 3_600))  # hours to a few days
    book.plant("device_farm", g, P.cat(n_devices, " devices, IP range ", prefix, ".0/24"))


def _synthetic_identities(book: Book, rate: float) -> None:
    """One ID number under several names and phones, or near-miss IDs with broken checksums."""
    rng, c = book.rng, book.cols
    g = book.groups(int(rate * book.n), 2, 4)
    if not g.count:
        return
    ids = c["applicant_id_number"]
    base = ids[g.rows[g.leader]].astype(str)
    reused = rng.random(g.count) < 0.6
    followers = g.position > 0
    same = followers & reused[g.group]
    ids[g.rows[same]] = base[g.group[same]]
    # near misses: the same person's details, the ID's check char or one sequence digit changed
    near = np.flatnonzero(followers & ~reused[g.group])
    if len(near):  # small portfolios may have no near misses
        b = base[g.group[near]]
        check_idx = np.searchsorted(np.array(list("0123456789X")), np.char.upper(np.array([s[-1] for s in b])))
        wrong_check = np.array(list("0123456789X"))[(check_idx + rng.integers(1, 11, len(near))) % 11]
        digit = np.array([s[15] for s in b]).astype(int)
        wrong_digit = ((digit + rng.integers(1, 10, len(near))) % 10).astype(str)
        by_check = rng.random(len(near)) < 0.5
        ids[g.rows[near]] = np.where(
            by_check,
            P.cat(np.array([s[:17] for s in b]), wrong_check),
            P.cat(np.array([s[:15] for s in b]), wrong_digit, np.array([s[16:] for s in b])),
        )
        leader_rows = g.rows[g.leader][g.group[near]]
        for col in ("applicant_name", "surname", "applicant_address"):
            c[col][g.rows[near]] = c[col][leader_rows]
    burst(book, g, _spans(book, g.count, lambda: rng.integers(3, 30, g.count) * 86_400))
    book.plant(
        "synthetic_identity",
        g,
        np.where(reused, "one ID number, several names and phones", "near-miss ID numbers with broken checksums"),
    )


def _contact_loops(book: Book, rate: float) -> None:
    """Applicants name each other as emergency contacts (A→B→C→A); some rings add one phone named by all."""
    rng, c = book.rng, book.cols
    g = _ring_groups(book, rate, 3, 6)
    if not g.count:
        return
    nxt = g.rows[g.next_in_group]
    book.add_contacts(
        g.rows,
        c["applicant_name"][nxt],
        c["applicant_phone"][nxt],
        P.pick(rng, ["friend", "colleague", "sibling"], len(g.rows)),
    )
    hub = rng.random(g.count) < 0.5
    sel = np.flatnonzero(hub[g.group])
    surname, given = P.names(rng, rng.random(g.count) < 0.5)
    book.add_contacts(g.rows[sel], P.cat(surname, given)[g.group[sel]], P.phones(rng, g.count)[g.group[sel]], "friend")
    burst(book, g, _spans(book, g.count, lambda: rng.integers(3, 21, g.count) * 86_400))
    book.plant(
        "contact_loop",
        g,
        np.where(
            hub, "emergency contacts in a loop, plus one contact phone named by all", "emergency contacts in a loop"
        ),
    )


def _broker_rings(book: Book, rate: float) -> None:
    """One agent, a burst, near-identical declared figures just under a threshold, shared contact phones."""
    rng, c = book.rng, book.cols
    g = _ring_groups(book, rate, 6, 20)
    if not g.count:
        return
    m = len(g.rows)
    # a real agent id from the pool: the same agent also submits honest business
    pool = agent_pool(book.total)
    agents = rng.choice(pool, size=g.count, replace=g.count > len(pool))
    c["agent_id"][g.rows] = agents[g.group]
    c["channel"][g.rows] = "agent"
    ceiling = P.pick(rng, [30_000, 50_000, 80_000, 100_000, 200_000], g.count).astype(float)
    declared = np.round(ceiling[g.group] * rng.uniform(0.96, 1.0, m), -2)
    biz = c["business"][g.rows]
    c["declared_monthly_revenue"][g.rows] = np.where(biz, declared, np.nan)
    c["declared_monthly_income"][g.rows] = np.where(biz, np.nan, declared)
    c["amount"][g.rows] = np.round(
        np.where(biz, declared * rng.uniform(2, 4, m), np.minimum(declared * rng.uniform(2, 4, m), 200_000)), -3
    )
    phones = P.phones(rng, 2 * g.count).reshape(g.count, 2)
    surname, given = P.names(rng, rng.random(2 * g.count) < 0.5)
    contact_names = P.cat(surname, given).reshape(g.count, 2)
    which = rng.integers(0, 2, m)
    book.add_contacts(g.rows, contact_names[g.group, which], phones[g.group, which], "friend")
    burst(book, g, _spans(book, g.count, lambda: rng.integers(2, 10, g.count) * 86_400))
    book.plant(
        "broker_ring",
        g,
        P.cat(
            "agent ",
            agents,
            ", declared ",
            (ceiling * 0.96).astype(int),
            "–",
            ceiling.astype(int),
            ", 2 shared contact phones",
        ),
    )


def _guarantee_circles(book: Book, rate: float) -> None:
    """Business borrowers guaranteeing each other in cycles (互保 and 3–6 circles), chains hanging off."""
    rng, c = book.rng, book.cols
    total = int(rate * int(c["business"].sum()))
    sizes = np.where(rng.random(total // 2 + 1) < 0.4, 2, rng.integers(3, 7, total // 2 + 1))
    g = book.groups(total, 2, 6, pool="business", sizes=sizes)
    if not g.count:
        return
    m = len(g.rows)
    nxt = g.rows[g.next_in_group]
    # the next member's firm guarantees this member's loan: edges firm(next) -> firm(this)
    book.add_guarantees(
        g.rows,
        "company",
        c["company_name"][nxt],
        c["company_uscc"][nxt],
        "",
        np.round(c["amount"][g.rows] * rng.uniform(0.5, 1.0, m), -2),
    )
    ids = book.plant("guarantee_circle", g, P.cat(g.sizes, "-cycle of company guarantees"))
    usccs = c["company_uscc"][g.rows].astype(str)
    members = ["|".join(usccs[g.group == k]) for k in range(g.count)]
    book.circles.append(pd.DataFrame({"circle_id": ids, "members": members, "cycle_length": g.sizes}))
    # chains: outside firms whose loans a circle member guarantees; they fall with the circle
    chain_count = rng.choice([0, 1, 2], size=g.count, p=[0.5, 0.3, 0.2])
    chain = book.take(int(chain_count.sum()), pool="business")
    owner = np.repeat(np.arange(g.count), chain_count)[: len(chain)]
    guarantor = g.rows[g.leader][owner]
    book.add_guarantees(
        chain,
        "company",
        c["company_name"][guarantor],
        c["company_uscc"][guarantor],
        "",
        np.round(c["amount"][chain] * 0.8, -2),
    )
    book.typology[chain] = "guarantee_circle"
    book.ring_id[chain] = ids[owner]
    burst(book, g, _spans(book, g.count, lambda: rng.integers(30, 120, g.count) * 86_400))


def _cashflow_inconsistency(book: Book, rate: float) -> None:
    """Declared revenue impossible for the business, or tiny revenue against a huge loan."""
    rng, c = book.rng, book.cols
    shops = np.isin(c["btype"], pools.SMALL_SHOPS) & c["business"]
    m = book.take(int(rate * book.n), mask=shops)
    half = len(m) // 2
    # a 小吃店 claiming millions a month
    c["declared_monthly_revenue"][m[:half]] = np.round(rng.uniform(1_500_000, 5_000_000, half), -3)
    # or an honest-looking revenue asking for 5–12 years of it
    rest = m[half:]
    c["amount"][rest] = np.minimum(
        np.round(c["declared_monthly_revenue"][rest] * rng.uniform(60, 150, len(rest)), -3), 3_000_000
    )
    c["declared_monthly_revenue"][rest] = np.minimum(c["declared_monthly_revenue"][rest], c["amount"][rest] / 60)
    c["declared_monthly_revenue"][rest] = np.round(c["declared_monthly_revenue"][rest], -2)
    book.typology[m] = "cashflow_inconsistency"
