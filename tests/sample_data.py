"""A small hand-made export folder with the awkward cases the contract names."""

from __future__ import annotations

import csv
from pathlib import Path

from stdnum.cn import ric, uscc

__all__ = ["make_id", "make_uscc", "write_sample", "split_export", "SAMPLE_EXPECTED", "INJECTION_NAME"]

INJECTION_NAME = "x'}) DETACH DELETE n //"


def make_id(region: str, birth: str, seq: str) -> str:
    """A resident ID with a valid check character (region 6, birth 8, seq 3 digits)."""
    body = region + birth + seq
    return body + ric.calc_check_digit(body + "0")  # stdnum wants the check slot present


def make_uscc(body17: str) -> str:
    """A USCC with a valid check character."""
    return body17 + uscc.calc_check_digit(body17)


P1 = make_id("110101", "19850312", "123")  # Beijing Dongcheng
P2 = make_id("440305", "19900101", "456")  # Shenzhen Nanshan
P3 = make_id("310104", "19780520", "789")
P4 = make_id("330106", "19921111", "024")
C1 = make_uscc("91440300MA5D" + "00001")
C2 = make_uscc("91440300MA5D" + "00002")

APPLICATIONS = [
    # id, applied_at, amount, name, id_number, phone, address, product, channel, agent, company, uscc, company_address, employer, account, device, ip, email, revenue, income, label
    [
        "A1",
        "2025-03-01 10:00:00",
        "200000",
        "張偉",
        P1,
        "+86 138-0013-8000",
        "北京市 朝阳区 建国路88号",
        "经营贷",
        "agent",
        "AG1",
        "北京鑫达贸易有限公司",
        C1,
        "深圳市南山区科技园1号楼",
        "",
        "6222 0000 1111 2222",
        "dev-1",
        "10.1.2.3",
        "Wei@Example.com",
        "80000",
        "",
        "good",
    ],
    [
        "A2",
        "2025/03/02",
        "50000",
        "王芳",
        P2,
        "１３９００１３９０００",
        "北京市朝阳区建国路88號",
        "经营贷",
        "agent",
        "AG1",
        "深圳华强电子有限公司",
        C2,
        "深圳市南山区科技园1号楼",
        "",
        "6222000011113333",
        "dev-1",
        "10.1.2.4",
        "",
        "60000",
        "",
        "default",
    ],
    [
        "A3",
        "2025-03-03T09:30:00+08:00",
        "30000",
        "Li Na",
        P3.lower() if P3.endswith("X") else P3,
        "8613700137000",
        "",
        "消费贷",
        "app",
        "",
        "",
        "",
        "",
        "腾讯科技",
        "",
        "dev-2",
        "2001:db8::1",
        "",
        "",
        "15000",
        "",
    ],
    [
        "A4",
        "2025-03-04",
        "1.2万",
        INJECTION_NAME,
        P4,
        "137 0013 7000",
        "",
        "消费贷",
        "web",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "9000",
        "",
    ],
    # exact duplicate of A4: collapses silently (same content)
    [
        "A4",
        "2025-03-04",
        "1.2万",
        INJECTION_NAME,
        P4,
        "137 0013 7000",
        "",
        "消费贷",
        "web",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "9000",
        "",
    ],
    # same key, different content: rejected
    [
        "A1",
        "2025-03-05",
        "999",
        "張偉",
        P1,
        "13800138000",
        "",
        "消费贷",
        "app",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
    # missing amount
    [
        "A5",
        "2025-03-05",
        "",
        "赵六",
        P4,
        "13600136000",
        "",
        "消费贷",
        "app",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
    # unparseable date
    [
        "A6",
        "not a date",
        "1000",
        "钱七",
        P4,
        "13600136000",
        "",
        "消费贷",
        "app",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
    # broken checksum: loaded and flagged
    [
        "A7",
        "2025-03-06",
        "8000",
        "孙八",
        P4[:-1] + ("0" if P4[-1] != "0" else "1"),
        "13500135000",
        "",
        "消费贷",
        "app",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
]
APP_HEADER = [
    "application_id",
    "applied_at",
    "amount",
    "applicant_name",
    "applicant_id_number",
    "applicant_phone",
    "applicant_address",
    "product",
    "channel",
    "agent_id",
    "company_name",
    "company_uscc",
    "company_address",
    "employer_name",
    "bank_account",
    "device_id",
    "ip",
    "email",
    "declared_monthly_revenue",
    "declared_monthly_income",
    "label",
]

CONTACTS = [
    ["A1", "王芳", "139 0013 9000", "friend"],
    ["A2", "张伟", "13800138000", "friend"],
    ["A3", "李母", "13911112222", "parent"],
    ["A9", "无名", "13911113333", "friend"],  # unknown application: rejected
    ["A3", "乱码", "12", "friend"],  # not a phone: rejected
]

GUARANTEES = [
    # 互保: C1 guarantees A2's borrower C2, C2 guarantees A1's borrower C1
    ["A1", "company", "深圳华强电子有限公司", C2, "", "100000"],
    ["A2", "company", "北京鑫达贸易有限公司", C1, "", "50000"],
    ["A3", "person", "张伟", P1, "13800138000", "30000"],
    ["A3", "alien", "某某", P2, "", ""],  # bad guarantor_type: rejected
]

ROLES = [
    [C1, "北京鑫达贸易有限公司", "张伟", P1, "legal_rep", ""],
    [C1, "北京鑫达贸易有限公司", "王芳", P2, "shareholder", "40"],
    [C2, "深圳华强电子有限公司", "李四", "", "legal_rep", ""],
    [C2, "深圳华强电子有限公司", "李四", "", "chairman", ""],  # unknown role: rejected
]

#: what a clean ingest of the sample must give
SAMPLE_EXPECTED = {
    "loaded": {"applications": 6, "contacts": 3, "guarantees": 3, "company_roles": 3},
    "rejected": {"applications": 3, "contacts": 2, "guarantees": 1, "company_roles": 1},
    "nodes": {"Application": 5, "Agent": 1, "Device": 2, "IP": 3, "Email": 1, "BankAccount": 2},
    "relationships": {"APPLIED": 5, "GUARANTEES": 3, "EMERGENCY_CONTACT": 3, "LEGAL_REP_OF": 2, "SHAREHOLDER_OF": 1},
}


def write_sample(folder: Path, encoding: str = "utf-8") -> Path:
    """Write the sample export into ``folder`` as CSV in ``encoding``."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "applications": (APP_HEADER, APPLICATIONS),
        "contacts": (["application_id", "contact_name", "contact_phone", "relation"], CONTACTS),
        "guarantees": (
            ["application_id", "guarantor_type", "guarantor_name", "guarantor_id", "guarantor_phone", "amount"],
            GUARANTEES,
        ),
        "company_roles": (
            ["company_uscc", "company_name", "person_name", "person_id_number", "role", "share_pct"],
            ROLES,
        ),
    }
    for name, (header, rows) in tables.items():
        with open(folder / f"{name}.csv", "w", encoding=encoding, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
    return folder


def split_export(source: Path, out: Path, parts: list[set[str]]) -> list[Path]:
    """Split the CSV export in ``source`` into one folder per set of
    application ids (``out/part-0``, ``out/part-1``, …): contacts and
    guarantees follow their application, registry rows go to every part."""
    import pandas as pd

    tables = {
        name: pd.read_csv(source / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("applications", "contacts", "guarantees", "company_roles")
        if (source / f"{name}.csv").exists()
    }
    folders = []
    for i, ids in enumerate(parts):
        folder = out / f"part-{i}"
        folder.mkdir(parents=True)
        for name, table in tables.items():
            if "application_id" in table.columns:
                table = table[table["application_id"].isin(ids)]
            table.to_csv(folder / f"{name}.csv", index=False)
        folders.append(folder)
    return folders
