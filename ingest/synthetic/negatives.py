"""Hard negatives: honest patterns that look like fraud to a naive detector."""

from __future__ import annotations

import numpy as np

from ingest.synthetic import people as P
from ingest.synthetic import pools
from ingest.synthetic.book import Book
from ingest.synthetic.honest import agent_pool

__all__ = ["plant_hard_negatives"]


def plant_hard_negatives(book: Book) -> None:
    """Families, repeat borrowers, office towers, carrier NAT, big employers, busy agents."""
    _families(book)
    _repeat_borrowers(book)
    _office_towers(book)
    _carrier_nat(book)
    _busy_agents(book)
    # big employers were drawn with the honest book: name the honest ones
    c = book.cols
    big = np.isin(c["employer_name"], pools.BIG_EMPLOYERS) & (book.hard_negative == "") & (book.typology == "")
    book.hard_negative[big] = "big_employer"


def _families(book: Book) -> None:
    """2–4 relatives: one home address, the home Wi-Fi IP, often one device, naming each other."""
    rng, c = book.rng, book.cols
    g = book.groups(int(0.03 * book.n), 2, 4, pool="consumer")
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
    book.add_contacts(rows[follower], c["applicant_name"][lead[follower]], c["applicant_phone"][lead[follower]],
                      np.where(relation[follower] == "child", "parent", relation[follower]))
    book.add_contacts(lead[spouse], c["applicant_name"][rows[spouse]], c["applicant_phone"][rows[spouse]], "spouse")
    book.hard_negative[rows] = "family"


def _repeat_borrowers(book: Book) -> None:
    """The same person borrowing again months later, typing things a little differently."""
    rng, c = book.rng, book.cols
    pairs = book.take(2 * int(0.02 * book.n))
    first, again = pairs[0::2], pairs[1::2][: len(pairs) // 2]
    first = first[: len(again)]
    early = c["applied_at"][first] <= c["applied_at"][again]
    first, again = np.where(early, first, again), np.where(early, again, first)
    for col in ("applicant_name", "surname", "given", "applicant_id_number", "applicant_phone", "applicant_address",
                "bank_account", "email", "company_name", "company_uscc", "company_address", "employer_name",
                "business", "btype", "product"):
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
    rows = book.take(int(0.02 * book.n), pool="business")
    tower = P.pick(rng, pools.OFFICE_TOWERS, len(rows))
    room = P.cat(tower, rng.integers(2, 30, len(rows)), "楼", rng.integers(1, 60, len(rows)), "室")
    whole = rng.random(len(rows)) < 0.5  # half give the building only, the rest a room in it
    c["company_address"][rows] = np.where(whole, tower, room)
    book.hard_negative[rows] = "office_tower"


def _carrier_nat(book: Book) -> None:
    """A handful of carrier-grade NAT addresses shared by thousands of honest applicants."""
    rng, c = book.rng, book.cols
    nat_ips = P.ipv4(rng, 5)
    rows = book.take(int(0.05 * book.n))
    c["ip"][rows] = nat_ips[rng.choice(5, size=len(rows), p=[0.4, 0.25, 0.15, 0.12, 0.08])]
    book.hard_negative[rows] = "carrier_nat"


def _busy_agents(book: Book) -> None:
    """Two productive honest agents: many applications, spread over two years, varied figures."""
    rng, c = book.rng, book.cols
    busy = rng.choice(agent_pool(book.n), size=2, replace=False)
    rows = book.take(int(0.03 * book.n))
    c["agent_id"][rows] = busy[rng.integers(0, 2, len(rows))]
    c["channel"][rows] = "agent"
    book.hard_negative[rows] = "busy_agent"
