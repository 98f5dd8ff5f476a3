"""Vectorised normalisation of the identifiers in a lender's export.

Every public ``normalize_*`` / ``parse_*`` function takes a pandas Series of
text (object or ``str`` dtype, may hold None/NaN/garbage), works on
``series.unique()`` only (real exports repeat a lot) and maps the result back
onto the input index. The common formats are settled by vectorised pyarrow
(RE2) and numpy code; only the values the fast path does not settle go to the
per-value reference implementation (``_*_one``), which uses the real library
(phonenumbers, python-stdnum, ipaddress, dateutil). The tests check that the
fast path and the reference agree.

No function raises on a bad value: it returns None/NaN/NaT and a False flag.
Text columns come back as pandas ``str`` dtype (missing = NaN), flags as
numpy ``bool``.

The functions live in one module per kind of identifier and are all
importable from here (``from ringscope.ingest import normalize as nz``):

- :mod:`.phones` — phone numbers;
- :mod:`.resident_ids` — 18-digit resident identity numbers (GB 11643);
- :mod:`.companies` — unified social credit codes (GB 32100);
- :mod:`.names` — person and company names, pinyin blocking keys;
- :mod:`.addresses` — free-text addresses;
- :mod:`.digital` — e-mails, IPs, bank accounts, device fingerprints;
- :mod:`.datetimes`, :mod:`.amounts` — timestamps and money;
- :mod:`.text` — the shared plumbing (factorize, NFKC, opencc).
"""

from __future__ import annotations

from ringscope.ingest.normalize.addresses import normalize_addresses
from ringscope.ingest.normalize.amounts import parse_amounts
from ringscope.ingest.normalize.companies import USCC_ALPHABET, normalize_uscc, uscc_check_index
from ringscope.ingest.normalize.datetimes import parse_datetimes
from ringscope.ingest.normalize.digital import normalize_accounts, normalize_device_ids, normalize_emails, normalize_ips
from ringscope.ingest.normalize.names import name_pinyin_key, normalize_names
from ringscope.ingest.normalize.phones import normalize_phones
from ringscope.ingest.normalize.resident_ids import id_check_chars, id_check_codes, normalize_id_numbers
from ringscope.ingest.normalize.text import to_halfwidth

# The per-value reference implementations stay reachable as ``nz._x_one``:
# the tests check the vectorised paths against them.
# isort: off
from ringscope.ingest.normalize.addresses import _address_one as _address_one
from ringscope.ingest.normalize.amounts import _amount_one as _amount_one
from ringscope.ingest.normalize.companies import _uscc_one as _uscc_one
from ringscope.ingest.normalize.datetimes import _datetime_one as _datetime_one
from ringscope.ingest.normalize.digital import _account_one as _account_one
from ringscope.ingest.normalize.digital import _device_one as _device_one
from ringscope.ingest.normalize.digital import _email_one as _email_one
from ringscope.ingest.normalize.digital import _ip_one as _ip_one
from ringscope.ingest.normalize.names import _name_one as _name_one
from ringscope.ingest.normalize.names import _pinyin_key_from_name as _pinyin_key_from_name
from ringscope.ingest.normalize.phones import _phone_one as _phone_one
from ringscope.ingest.normalize.resident_ids import _id_one as _id_one
# isort: on

__all__ = [
    "to_halfwidth",
    "normalize_phones",
    "normalize_id_numbers",
    "normalize_uscc",
    "id_check_chars",
    "id_check_codes",
    "uscc_check_index",
    "USCC_ALPHABET",
    "normalize_names",
    "name_pinyin_key",
    "normalize_addresses",
    "normalize_emails",
    "normalize_ips",
    "normalize_accounts",
    "normalize_device_ids",
    "parse_datetimes",
    "parse_amounts",
]
