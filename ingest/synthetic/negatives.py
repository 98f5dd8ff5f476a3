"""Hard negatives: honest patterns that look like fraud to a naive detector."""

from __future__ import annotations

import numpy as np

from ringscope.ingest.synthetic import people as P
from ringscope.ingest.synthetic import pools
from ringscope.ingest.synthetic.book import Book
from ringscope.ingest.synthetic.honest import agent_pool, big_employers

__all__ = ["plant_hard_negatives", "office_towers"]


def plant_hard_negatives(book: Book) -> None:
    """Families, repeat borrowers, office towers, carrier NAT, big employers, busy agents."""
    _families(book)
    _repeat_borrowers(book)
    _office_towers(book)
    _carrier_nat(book)
    _busy_agents(book)
    # big employers were drawn with the honest book: name the honest ones
    c = book.cols
    names, _ = big_employers(book.config.big_employers)
    big = np.isin(c["employer_name"], names) & (book.hard_negative == "") & (book.typology == "")
    book.hard_negative[big] = "big_employer"


def _families(book: Book) -> None:
    """2–4 relatives (``family_size``): one home address, the home Wi-Fi IP, often one device, naming each other."""
    rng, c = book.rng, book.cols
    g = book.groups(int(book.config.family_share * book.n), 2, book.config.family_size, pool="consumer")
    if not g.count:
        return
    lead = g.rows[g.leader][g.group]
    rows = g.rows
    c["applicant_address"][rows] = c["applicant_address"][lead]
    c["ip"][rows] = c["ip"][lead]
    same_device = rng.random(len(rows)) < 0.5
    c["device_id"][rows[same_device]] = c["device_id"][lead[same_device]]
    # the leader's spouse keeps their own surname; children and siblings share the leader's
    spouse = g.position == 1
    kin = g.position >= 2
    c["surname"][rows[kin]] = c["surname"][lead[kin]]
    c["applicant_name"][rows[kin]] = P.cat(c["surname"][rows[kin]], c["given"][rows[kin]])
    relation = np.where(spouse, "spouse", np.where(g.position >= 2, P.pick(rng, ["child", "sibling"], len(rows)), ""))
    follower = g.position > 0
    # each relative names the leader, and the leader names the spouse
    book.add_contacts(
        rows[follower],
        c["applicant_name"][lead[follower]],
        c["applicant_phone"][lead[follower]],
        np.where(relation[follower] == "child", "parent", relation[follower]),
    )
    book.add_contacts(lead[spouse], c["applicant_name"][rows[spouse]], c["applicant_phone"][rows[spouse]], "spouse")
    book.hard_negative[rows] = "family"


def _repeat_borrowers(book: Book) -> None:
    """The same person borrowing again months later, typing things a little differently."""
    rng, c = book.rng, book.cols
    pairs = book.take(2 * int(book.config.repeat_share * book.n))
    first, again = pairs[0::2], pairs[1::2][: len(pairs) // 2]
    first = first[: len(again)]
    early = c["applied_at"][first] <= c["applied_at"][again]
    first, again = np.where(early, first, again), np.where(early, again, first)
    for col in (
        "applicant_name",
        "surname",
        "given",
        "applicant_id_number",
        "applicant_phone",
        "applicant_address",
        "bank_account",
        "email",
        "company_name",
        "company_uscc",
        "company_address",
        "employer_name",
        "business",
        "btype",
        "product",
    ):
        c[col][again] = c[col][first]
    # the same business asks again: figures move a little, the loan grows
    drift = rng.uniform(0.9, 1.25, len(again))
    for col in ("declared_monthly_revenue", "declared_monthly_income"):
        c[col][again] = np.round(c[col][first] * drift, -2)
    c["amount"][again] = np.round(c["amount"][first] * rng.uniform(0.8, 1.5, len(again)), -2)
    c["term_months"][again] = c["term_months"][first]
    # a new phone handset for some, the same card for most
    new_device = rng.random(len(again)) < 0.6
    c["device_id"][again[~new_device]] = c["device_id"][first[~new_device]]
    book.force_mess[again] = True  # formatting drifts between the two applications
    book.hard_negative[np.concatenate([first, again])] = "repeat_borrower"


def _office_towers(book: Book) -> None:
    """Hundreds of small firms registered in one building (a registration agent's address)."""
    rng, c = book.rng, book.cols
    rows = book.take(int(book.config.office_share * book.n), pool="business")
    tower = P.pick(rng, office_towers(book.config.office_towers), len(rows))
    room = P.cat(tower, rng.integers(2, 30, len(rows)), "楼", rng.integers(1, 60, len(rows)), "室")
    whole = rng.random(len(rows)) < 0.5  # half give the building only, the rest a room in it
    c["company_address"][rows] = np.where(whole, tower, room)
    book.hard_negative[rows] = "office_tower"


def _carrier_nat(book: Book) -> None:
    """A handful of carrier-grade NAT addresses shared by thousands of honest applicants."""
    rng, c = book.rng, book.cols
    k = book.config.nat_ips
    nat_ips = book.hubs["nat_ips"] if "nat_ips" in book.hubs else P.ipv4(rng, k)
    rows = book.take(int(book.config.nat_share * book.n))
    # a few big addresses and a tail of smaller ones
    weights = 1.0 / np.arange(1, k + 1) ** 0.8
    p = [0.4, 0.25, 0.15, 0.12, 0.08] if k == 5 else weights / weights.sum()
    c["ip"][rows] = nat_ips[rng.choice(k, size=len(rows), p=p)]
    book.hard_negative[rows] = "carrier_nat"


def office_towers(count: int) -> tuple[str, ...]:
    """``count`` office-tower addresses: the pool's four first, then made-up
    buildings in the same cities (deterministic, no draw from the generator's stream).

    >>> office_towers(2) == pools.OFFICE_TOWERS[:2], len(set(office_towers(9)))
    (True, 9)
    """
    towers = list(pools.OFFICE_TOWERS[:count])
    cities = ("深圳市南山区", "上海市浦东新区", "杭州市西湖区", "广州市天河区", "成都市高新区", "北京市海淀区")
    for i in range(count - len(towers)):
        road = pools.ROADS[i % len(pools.ROADS)]
        towers.append(
            f"{cities[i % len(cities)]}{road}{100 + 7 * i}号{pools.BRAND_CHARS[i % len(pools.BRAND_CHARS)]}"
            f"{pools.BRAND_CHARS[(5 * i + 2) % len(pools.BRAND_CHARS)]}大厦"
        )
    return tuple(towers)


def _busy_agents(book: Book) -> None:
    """Productive honest agents (two by default): many applications, spread over two years, varied figures."""
    rng, c = book.rng, book.cols
    agents = agent_pool(book.total)
    k = min(book.config.busy_agents, len(agents))
    busy = book.hubs["busy_agents"] if "busy_agents" in book.hubs else rng.choice(agents, size=k, replace=False)
    rows = book.take(int(book.config.busy_agent_share * book.n))
    c["agent_id"][rows] = busy[rng.integers(0, k, len(rows))]
    c["channel"][rows] = "agent"
    book.hard_negative[rows] = "busy_agent"
