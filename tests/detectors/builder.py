"""Build small contract exports by hand, for detector tests.

Every application gets its own fresh identifiers (ID number, phone, device,
IP, account, address) unless the test passes shared ones, so a test plants
exactly the sharing it means and nothing else links by accident.

Example
-------
>>> b = ExportBuilder()
>>> a = b.app(device_id="farm-1")
>>> c = b.app(device_id="farm-1")
>>> len(b.applications), b.applications[0]["device_id"]
(2, 'farm-1')
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ringscope.ingest.contract import CONTRACT_COLUMNS
from tests.sample_data import make_id, make_uscc

__all__ = ["ExportBuilder", "person_id", "company_uscc", "unique_name"]

APP_COLUMNS = list(CONTRACT_COLUMNS["applications"])
GUARANTEE_COLUMNS = list(CONTRACT_COLUMNS["guarantees"])
CONTACT_COLUMNS = list(CONTRACT_COLUMNS["contacts"])
ROLE_COLUMNS = list(CONTRACT_COLUMNS["company_roles"])

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建"
_REGIONS = ["110101", "310104", "440305", "330106", "510104", "420102", "320102", "370102"]


def unique_name(i: int) -> str:
    """A distinct plausible Chinese name for each ``i`` (three characters)."""
    return (
        _SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i // len(_SURNAMES)) % len(_GIVEN)] + _GIVEN[(i * 7 + 3) % len(_GIVEN)]
    )


def person_id(i: int, birth: str | None = None) -> str:
    """A valid resident ID, distinct for each ``i``."""
    birth = birth or f"19{70 + i % 25:02d}{1 + i % 12:02d}{1 + i % 28:02d}"
    return make_id(_REGIONS[i % len(_REGIONS)], birth, f"{i % 1000:03d}")


def company_uscc(i: int) -> str:
    """A valid USCC, distinct for each ``i``."""
    return make_uscc(f"91440300MA{i:07d}"[:17])


class ExportBuilder:
    """Collects rows of the four contract tables and writes them as CSV."""

    def __init__(self, start: datetime = datetime(2025, 1, 6, 9, 0), first_index: int = 0) -> None:
        """``first_index`` offsets the generated identities, so two builders
        loaded into one store do not reuse each other's people."""
        self.applications: list[dict[str, Any]] = []
        self.guarantees: list[dict[str, Any]] = []
        self.contacts: list[dict[str, Any]] = []
        self.roles: list[dict[str, Any]] = []
        self.start = start
        self._n = first_index
        self._days = 0  # default dates count from ``start`` whatever ``first_index`` is

    def app(self, application_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Add an application; unspecified identifiers are fresh and unique.

        ``applied_at`` may be a ``datetime``; by default applications are one
        day apart. Returns the row (its ``application_id`` and the rest).
        """
        i = self._n = self._n + 1
        self._days += 1
        row: dict[str, Any] = {
            "application_id": application_id or f"T{i:05d}",
            "applied_at": self.start + timedelta(days=self._days),
            "amount": 50000,
            "applicant_name": unique_name(i),
            "applicant_id_number": person_id(i),
            "applicant_phone": f"139{i:08d}",
            "applicant_address": f"浙江省杭州市西湖区文三路{i}号{i % 30 + 1}栋{i % 9 + 1}单元{100 + i}室",
            "term_months": 12,
            "product": "消费贷",
            "channel": "app",
            "agent_id": "",
            "company_name": "",
            "company_uscc": "",
            "company_address": "",
            "employer_name": f"杭州第{i}实业有限公司",
            "bank_account": f"6222{i:015d}",
            "device_id": f"dev-{i:06d}",
            "ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "email": "",
            "declared_monthly_revenue": "",
            "declared_monthly_income": 12000,
            "label": "good",
        }
        unknown = set(fields) - set(row)
        if unknown:
            raise KeyError(f"not application columns: {sorted(unknown)}")
        row.update(fields)
        if isinstance(row["applied_at"], datetime):
            row["applied_at"] = row["applied_at"].strftime("%Y-%m-%d %H:%M:%S")
        self.applications.append(row)
        return row

    def business_app(self, company_index: int, application_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A business loan (经营贷) whose borrower is company ``company_index``."""
        defaults = {
            "product": "经营贷",
            "company_name": f"深圳市第{company_index}号贸易有限公司",
            "company_uscc": company_uscc(company_index),
            "company_address": f"广东省深圳市南山区科技园{company_index}号",
            "employer_name": "",
            "declared_monthly_revenue": 200000,
            "declared_monthly_income": "",
            "amount": 300000,
        }
        defaults.update(fields)
        return self.app(application_id, **defaults)

    def guarantee(
        self,
        application_id: str,
        guarantor_type: str,
        guarantor_name: str,
        guarantor_id: str,
        amount: float = 100000,
        guarantor_phone: str = "",
    ) -> None:
        self.guarantees.append(
            dict(
                application_id=application_id,
                guarantor_type=guarantor_type,
                guarantor_name=guarantor_name,
                guarantor_id=guarantor_id,
                guarantor_phone=guarantor_phone,
                amount=amount,
            )
        )

    def contact(self, application_id: str, contact_name: str, contact_phone: str, relation: str = "friend") -> None:
        self.contacts.append(
            dict(
                application_id=application_id, contact_name=contact_name, contact_phone=contact_phone, relation=relation
            )
        )

    def role(
        self,
        company_uscc: str,
        person_name: str,
        person_id_number: str,
        role: str = "legal_rep",
        company_name: str = "",
        share_pct: float | str = "",
    ) -> None:
        self.roles.append(
            dict(
                company_uscc=company_uscc,
                company_name=company_name,
                person_name=person_name,
                person_id_number=person_id_number,
                role=role,
                share_pct=share_pct,
            )
        )

    def write(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, columns, rows in (
            ("applications", APP_COLUMNS, self.applications),
            ("guarantees", GUARANTEE_COLUMNS, self.guarantees),
            ("contacts", CONTACT_COLUMNS, self.contacts),
            ("company_roles", ROLE_COLUMNS, self.roles),
        ):
            if rows or name == "applications":
                with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=columns)
                    writer.writeheader()
                    writer.writerows(rows)
        return folder

    def load(self, store, folder: Path):
        """Write the export to ``folder`` and ingest it into ``store``; return the summary."""
        from ringscope.ingest.pipeline import ingest_folder

        self.write(folder)
        summary = ingest_folder(folder, store, rejects_path=Path(folder) / "rejects.csv")
        assert summary.exit_code == 0, summary
        return summary
