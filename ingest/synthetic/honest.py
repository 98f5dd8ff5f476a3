"""The honest book: people, firms, two years of applications, contacts and guarantees."""

from __future__ import annotations

import numpy as np

from ringscope.ingest.synthetic import people as P
from ringscope.ingest.synthetic import pools
from ringscope.ingest.synthetic.book import Book

__all__ = ["honest_book", "agent_pool", "big_employers"]

BUSINESS_SHARE = 0.42


def agent_pool(n: int) -> np.ndarray:
    """Agent ids (loan officers, brokers) in one format for honest and crooked alike."""
    count = max(8, n // 400)
    return np.char.add("AG", np.char.zfill(np.arange(1, count + 1).astype(str), 5))


def big_employers(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Names and relative sizes of ``count`` big employers: the pool's first,
    then made-up groups (``…集团有限公司``) a little smaller than the pool's smallest."""
    names = [e[0] for e in pools.EMPLOYERS[:count]]
    shares = [e[1] for e in pools.EMPLOYERS[:count]]
    chars = pools.BRAND_CHARS
    for i in range(count - len(names)):  # deterministic: no draw from the generator's stream
        names.append(f"{chars[i % len(chars)]}{chars[(7 * i + 3) % len(chars)]}{i // len(chars) or ''}集团有限公司")
        shares.append(0.015)
    return np.array(names), np.array(shares)


def honest_book(book: Book) -> None:
    """Fill ``book.cols`` with an honest portfolio of ``book.n`` applications."""
    rng, n, c = book.rng, book.n, book.cols
    r = pools.regions()
    c["applied_at"] = P.application_times(rng, n, book.window)
    region_idx = rng.choice(len(r.codes), size=n, p=r.weights)
    c["region_idx"] = region_idx
    male = rng.random(n) < 0.58  # borrowers skew male, business owners more so
    age_days = rng.integers(20 * 365 + 5, 65 * 365 - 5, n)  # age 20–65 on the day of application
    birth = (c["applied_at"].astype("datetime64[D]") - age_days.astype("timedelta64[D]")).astype("datetime64[D]")
    c["male"], c["birth"] = male, birth
    c["surname"], c["given"] = P.names(rng, male)
    c["applicant_name"] = P.cat(c["surname"], c["given"]).astype(object)
    c["applicant_id_number"] = P.resident_ids(rng, r.codes[region_idx], birth, male).astype(object)
    c["applicant_phone"] = P.phones(rng, n).astype(object)
    c["applicant_address"] = P.addresses(rng, region_idx).astype(object)
    business = rng.random(n) < BUSINESS_SHARE
    c["business"] = business
    c["device_id"] = P.hex_ids(rng, n).astype(object)
    c["ip"] = np.where(rng.random(n) < 0.07, P.ipv6(rng, n), P.ipv4(rng, n)).astype(object)
    c["bank_account"] = P.bank_cards(rng, n)
    qq = P.cat(rng.integers(1, 10, n), P.digits(rng, n, 8))  # QQ numbers: 9 or 10 digits
    qq = np.where(rng.random(n) < 0.5, P.cat(qq, rng.integers(0, 10, n)), qq)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    handle = P.cat(letters[rng.integers(0, 26, size=(n, 5))].astype("U1").view("U5").ravel(), rng.integers(10, 999, n))
    domain = P.pick(rng, pools.EMAIL_DOMAINS, n)
    local = np.where(domain == "qq.com", qq, handle)
    c["email"] = np.where(rng.random(n) < 0.3, P.cat(local, "@", domain), "").astype(object)

    # businesses: one firm per business application, sized by its industry
    btype = rng.integers(0, len(pools.BUSINESS_TYPES), n)
    c["btype"] = btype
    rev_lo, rev_hi = (np.array([b[1][k] for b in pools.BUSINESS_TYPES])[btype] for k in (0, 1))
    amt_lo, amt_hi = (np.array([b[2][k] for b in pools.BUSINESS_TYPES])[btype] for k in (0, 1))
    revenue = np.exp(rng.uniform(np.log(rev_lo), np.log(rev_hi)))
    biz_amount = np.clip(revenue * rng.uniform(1.0, 5.0, n), np.maximum(amt_lo, 50_000), np.minimum(amt_hi, 3_000_000))
    city = np.where(r.city[region_idx] == r.province[region_idx], r.province[region_idx], r.city[region_idx])
    industry = np.array([b[0] for b in pools.BUSINESS_TYPES])[btype]
    brand = P.cat(P.pick(rng, pools.BRAND_CHARS, n), P.pick(rng, pools.BRAND_CHARS, n))
    c["company_name"] = np.where(business, P.cat(city, brand, industry), "").astype(object)
    c["company_uscc"] = np.where(business, P.usccs(rng, r.codes[region_idx]), "").astype(object)
    c["company_address"] = np.where(business, P.addresses(rng, region_idx, unit="号商铺"), "").astype(object)
    income = np.round(np.exp(rng.normal(np.log(7_500), 0.5, n)), -2)
    cons_amount = np.clip(income * rng.uniform(1.0, 12.0, n), 5_000, 200_000)
    c["amount"] = np.round(np.where(business, biz_amount, cons_amount), -2)
    c["declared_monthly_revenue"] = np.where(business, np.round(revenue, -2), np.nan)
    c["declared_monthly_income"] = np.where(business, np.nan, income)
    c["term_months"] = np.where(business, P.pick(rng, [12, 24, 36], n), P.pick(rng, [3, 6, 12, 24, 36], n))
    c["product"] = np.where(business, "经营贷", np.where(rng.random(n) < 0.75, "消费贷", "信用卡")).astype(object)
    c["channel"] = P.pick(rng, ["app", "web", "branch", "agent"], n, p=[0.45, 0.2, 0.15, 0.2]).astype(object)
    c["agent_id"] = np.where(c["channel"] == "agent", P.pick(rng, agent_pool(book.total), n), "").astype(object)
    # consumer employers: a long tail of small firms and a few giants
    small = P.cat(
        P.pick(rng, pools.BRAND_CHARS, n),
        P.pick(rng, pools.BRAND_CHARS, n),
        P.pick(rng, ["科技", "贸易", "餐饮", "物业", "教育", "物流", "医药"], n),
        "有限公司",
    )
    big_names, big_share = big_employers(book.config.big_employers)
    big = rng.choice(big_names, size=n, p=big_share / big_share.sum())
    at_big = big_share.sum() if book.config.employer_share is None else book.config.employer_share
    c["employer_name"] = np.where(business, "", np.where(rng.random(n) < at_big, big, small)).astype(object)
    c["is_bad"] = np.zeros(n, dtype=bool)

    _contacts(book)
    _guarantees(book)


def _contacts(book: Book) -> None:
    """1–3 emergency contacts per application; family members share the surname (spouses don't)."""
    rng, n, c = book.rng, book.n, book.cols
    k = rng.choice([1, 2, 3], size=n, p=[0.35, 0.45, 0.2])
    owner = np.repeat(np.arange(n), k)
    m = len(owner)
    family = rng.random(m) < 0.6
    relation = np.where(family, P.pick(rng, pools.RELATIONS_FAMILY, m), P.pick(rng, pools.RELATIONS_OTHER, m))
    male = rng.random(m) < 0.5
    surname, given = P.names(rng, male)
    same = family & (relation != "spouse")
    name = P.cat(np.where(same, c["surname"][owner], surname), given)
    book.add_contacts(owner, name, P.phones(rng, m), relation)


def _guarantees(book: Book) -> None:
    """About 30% of business loans carry 1–2 guarantors, persons or firms."""
    rng, c = book.rng, book.cols
    r = pools.regions()
    biz = np.flatnonzero(c["business"] & (rng.random(book.n) < 0.3))
    owner = np.repeat(biz, rng.choice([1, 2], size=len(biz), p=[0.7, 0.3]))
    m = len(owner)
    person = rng.random(m) < 0.7
    region = c["region_idx"][owner]  # guarantors are local
    male = rng.random(m) < 0.6
    birth = np.datetime64("2026-01-01") - rng.integers(25 * 365, 60 * 365, m).astype("timedelta64[D]")
    surname, given = P.names(rng, male)
    city = np.where(r.city[region] == r.province[region], r.province[region], r.city[region])
    firm = P.cat(
        city,
        P.pick(rng, pools.BRAND_CHARS, m),
        P.pick(rng, pools.BRAND_CHARS, m),
        P.pick(rng, ["投资有限公司", "融资担保有限公司", "实业有限公司"], m),
    )
    book.add_guarantees(
        owner,
        np.where(person, "person", "company"),
        np.where(person, P.cat(surname, given), firm),
        np.where(person, P.resident_ids(rng, r.codes[region], birth, male), P.usccs(rng, r.codes[region])),
        np.where(person, P.phones(rng, m), ""),
        np.round(c["amount"][owner] * rng.uniform(0.3, 1.0, m), -2),
    )
