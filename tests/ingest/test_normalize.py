"""Table-driven tests of ingest.normalize, plus fast path == reference path."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from ringscope.ingest import normalize as nz
from ringscope.ingest.synthetic import people


def make_id(body17: str) -> str:
    # python-stdnum is the oracle: ringscope has one checksum definition of its own
    return body17 + stdnum_ric.calc_check_digit(body17 + "0")


def make_uscc(body17: str) -> str:
    return body17 + stdnum_uscc.calc_check_digit(body17 + "0")


def na(x):
    """NaN/None/NaT -> None, numpy scalars -> Python, for comparisons."""
    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return None
    if isinstance(x, np.generic):
        return x.item()
    return x


GOOD_ID = make_id("11010519900307123")  # Beijing Xicheng, 1990-03-07, male (3 odd)
GOOD_ID_F = make_id("44030519851231002")
BAD_CHECK_ID = GOOD_ID[:17] + ("0" if GOOD_ID[17] != "0" else "1")
GOOD_USCC = make_uscc("91440300MA5D12345")
BAD_USCC = GOOD_USCC[:17] + ("A" if GOOD_USCC[17] != "A" else "B")


def one(func, value, column=None):
    out = func(pd.Series([value], dtype=object))
    if isinstance(out, pd.DataFrame):
        return na(out[column].iloc[0]) if column else [na(v) for v in out.iloc[0].tolist()]
    return na(out.iloc[0])


# ----------------------------------------------------------------- halfwidth


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("１３８００１３８０００", "13800138000"),
        ("ＡＢＣ\u3000ｘ", "ABC x"),
        ("（１）", "(1)"),
        ("张三", "张三"),
        ("", ""),
    ],
)
def test_to_halfwidth(raw, expected):
    assert nz.to_halfwidth(raw) == expected


# -------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "raw, phone, valid",
    [
        ("13800138000", "+8613800138000", True),
        ("１３８００１３８０００", "+8613800138000", True),
        ("+86 138-0013-8000", "+8613800138000", True),
        ("8613800138000", "+8613800138000", True),
        ("0086 138 0013 8000", "+8613800138000", True),
        ("138 0013 8000", "+8613800138000", True),
        ("(+86) 138.0013.8000", "+8613800138000", True),
        ("+86 １３８ ００１３ ８０００", "+8613800138000", True),
        ("010-12345678", "+861012345678", True),
        ("(0755) 8888 6666", "+8675588886666", True),
        ("15400000000", "+8615400000000", False),  # possible length, unallocated range
        ("12345", None, False),
        ("abc", None, False),
        ("", None, False),
        ("   ", None, False),
        (None, None, False),
        (float("nan"), None, False),
        ("+1 650-253-0000", "+16502530000", True),
    ],
)
def test_normalize_phones(raw, phone, valid):
    assert one(nz.normalize_phones, raw) == [phone, valid]


def test_phones_keep_index_and_missing():
    s = pd.Series(["13800138000", None, "13800138000"], index=[10, 20, 30])
    out = nz.normalize_phones(s)
    assert list(out.index) == [10, 20, 30]
    assert out["phone"].isna().tolist() == [False, True, False]
    assert out["phone_valid"].dtype == bool


# ------------------------------------------------------------------------ IDs


@pytest.mark.parametrize(
    "raw, number, fmt, check, birth, region, known, gender",
    [
        (GOOD_ID, GOOD_ID, True, True, dt.date(1990, 3, 7), "110105", True, "M"),
        (" " + GOOD_ID[:6] + " " + GOOD_ID[6:] + " ", GOOD_ID, True, True, dt.date(1990, 3, 7), "110105", True, "M"),
        (
            nz.to_halfwidth(GOOD_ID).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
            GOOD_ID,
            True,
            True,
            dt.date(1990, 3, 7),
            "110105",
            True,
            "M",
        ),
        (GOOD_ID_F, GOOD_ID_F, True, True, dt.date(1985, 12, 31), "440305", True, "F"),
        ("11010519491231002x", "11010519491231002X", True, True, dt.date(1949, 12, 31), "110105", True, "F"),
        (BAD_CHECK_ID, BAD_CHECK_ID, True, False, dt.date(1990, 3, 7), "110105", True, "M"),  # kept, flagged
        ("110105491231002", "11010519491231002X", True, True, dt.date(1949, 12, 31), "110105", True, "F"),  # legacy
        (make_id("11010519900230123"), make_id("11010519900230123"), True, True, None, "110105", True, "M"),  # Feb 30
        (make_id("11010520990101123"), make_id("11010520990101123"), True, True, None, "110105", True, "M"),  # future
        (
            make_id("99999919900307123"),
            make_id("99999919900307123"),
            True,
            True,
            dt.date(1990, 3, 7),
            "999999",
            False,
            "M",
        ),
        ("11010X19900307123X", "11010X19900307123X", False, False, None, None, False, None),
        ("12345", None, False, False, None, None, False, None),
        ("abcdefghijklmnopqr", None, False, False, None, None, False, None),
        ("", None, False, False, None, None, False, None),
        (None, None, False, False, None, None, False, None),
    ],
)
def test_normalize_id_numbers(raw, number, fmt, check, birth, region, known, gender):
    got = one(nz.normalize_id_numbers, raw)
    birth_got = None if got[3] is None else pd.Timestamp(got[3]).date()
    assert [got[0], got[1], got[2], birth_got, got[4], got[5], got[6]] == [
        number,
        fmt,
        check,
        birth,
        region,
        known,
        gender,
    ]


def test_id_birth_date_dtype():
    out = nz.normalize_id_numbers(pd.Series([GOOD_ID, None]))
    assert pd.api.types.is_datetime64_dtype(out["id_birth_date"])
    assert out["id_birth_date"].isna().tolist() == [False, True]


# ---------------------------------------------------------------------- USCC


@pytest.mark.parametrize(
    "raw, code, valid",
    [
        (GOOD_USCC, GOOD_USCC, True),
        (" " + GOOD_USCC.lower() + " ", GOOD_USCC, True),
        ("91110000600037341L", "91110000600037341L", True),
        (BAD_USCC, BAD_USCC, False),
        ("A1110000600037341L", "A1110000600037341L", False),  # alphabet ok, first 8 not digits
        ("91110000600037341", None, False),
        ("9111000060003734IO", None, False),  # I and O are not in the alphabet
        ("", None, False),
        (None, None, False),
    ],
)
def test_normalize_uscc(raw, code, valid):
    assert one(nz.normalize_uscc, raw) == [code, valid]
    if code is not None:
        assert valid == stdnum_uscc.is_valid(code)


# --------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "raw, name, script",
    [
        ("張偉", "张伟", "han"),
        ("张 三", "张三", "han"),
        ("  张\u3000三 ", "张三", "han"),
        ("Zhāng Sān", "zhang san", "latin"),
        ("ZHANG   SAN", "zhang san", "latin"),
        ("Lǚ Bù", "lü bu", "latin"),
        ("阿卜杜拉・买买提", "阿卜杜拉·买买提", "han"),
        ("阿卜杜拉.买买提", "阿卜杜拉·买买提", "han"),
        ("阿卜杜拉 • 买买提", "阿卜杜拉·买买提", "han"),
        ("ＡＢＣ科技有限公司", "ABC科技有限公司", "mixed"),
        ("12345", "12345", "mixed"),
        ("", None, None),
        ("   ", None, None),
        (None, None, None),
    ],
)
def test_normalize_names(raw, name, script):
    assert one(nz.normalize_names, raw) == [name, script]


@pytest.mark.parametrize(
    "raw, key",
    [
        ("张三", "zhangsan"),
        ("張三", "zhangsan"),
        ("Zhang San", "zhangsan"),
        ("zhang-san", "zhangsan"),
        ("Zhāng Sān", "zhangsan"),
        ("单雄信", "shanxiongxin"),
        ("曾国藩", "zengguofan"),
        ("区志强", "ouzhiqiang"),
        ("尉迟恭", "yuchigong"),
        ("吕布", "lvbu"),
        ("", None),
        (None, None),
    ],
)
def test_name_pinyin_key(raw, key):
    assert one(nz.name_pinyin_key, raw) == key


# ----------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "raw, address",
    [
        ("广东省深圳市南山区科技园5栋1201室", "广东省深圳市南山区科技园5栋1201室"),
        ("中国 广东省 深圳市 南山区 科技园 5 栋 1201 室", "广东省深圳市南山区科技园5栋1201室"),
        ("中華人民共和國廣東省深圳市南山區科技園5號樓1201房", "广东省深圳市南山区科技园5栋1201室"),
        ("广东省深圳市南山区科技园5幢1201", "广东省深圳市南山区科技园5栋1201"),
        ("广东省深圳市南山区科技园5#楼1201室", "广东省深圳市南山区科技园5栋1201室"),
        ("北京市朝阳区建国路（东区）８８号，３单元", "北京市朝阳区建国路东区88号3单元"),
        ("上海市浦东新区世纪大道1—2——3", "上海市浦东新区世纪大道1-2-3"),
        ("某小区3单元五楼厨房", "某小区3单元五楼厨房"),
        ("  ", None),
        (None, None),
    ],
)
def test_normalize_addresses(raw, address):
    assert one(nz.normalize_addresses, raw, "address") == address


# ----------------------------------------------------- emails, IPs, accounts


@pytest.mark.parametrize(
    "raw, email, valid",
    [
        (" Zhang.San@QQ.com ", "zhang.san@qq.com", True),
        ("１２３４５＠ｑｑ．ｃｏｍ", "12345@qq.com", True),
        ("a+b@mail.example.com.cn", "a+b@mail.example.com.cn", True),
        ("no-at-sign", None, False),
        ("x@localhost", None, False),
        ("a b@qq.com", None, False),
        (None, None, False),
    ],
)
def test_normalize_emails(raw, email, valid):
    assert one(nz.normalize_emails, raw) == [email, valid]


@pytest.mark.parametrize(
    "raw, ip, valid, prefix",
    [
        ("1.2.3.4", "1.2.3.4", True, "1.2.3.0/24"),
        (" 255.255.255.255 ", "255.255.255.255", True, "255.255.255.0/24"),
        ("１．２．３．４", "1.2.3.4", True, "1.2.3.0/24"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", True, "2001:db8::/48"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd:12::1", True, "2001:db8:abcd::/48"),
        ("::ffff:1.2.3.4", "::ffff:102:304", True, "::/48"),
        ("256.1.1.1", None, False, None),
        ("01.2.3.4", None, False, None),
        ("not an ip", None, False, None),
        (None, None, False, None),
    ],
)
def test_normalize_ips(raw, ip, valid, prefix):
    assert one(nz.normalize_ips, raw) == [ip, valid, prefix]


@pytest.mark.parametrize(
    "raw, account, valid",
    [
        ("6222 0212 3456 7890", "6222021234567890", True),
        ("6222-0212-3456-7890-123", "6222021234567890123", True),
        ("６２２２０２１２３４５６７８９０", "6222021234567890", True),
        ("1234567", None, False),
        ("1" * 31, None, False),
        ("6222x0212345", None, False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_normalize_accounts(raw, account, valid):
    assert one(nz.normalize_accounts, raw) == [account, valid]


@pytest.mark.parametrize(
    "raw, device", [(" ａｂｃ-123 ", "abc-123"), ("ABC", "ABC"), ("", None), ("\u3000", None), (None, None)]
)
def test_normalize_device_ids(raw, device):
    assert one(nz.normalize_device_ids, raw) == device


# ----------------------------------------------------- timestamps and amounts


def utc(*args):
    return pd.Timestamp(dt.datetime(*args), tz="UTC")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2024-01-05 08:00:00", utc(2024, 1, 5, 0, 0, 0)),
        ("2024-01-05T08:00:00", utc(2024, 1, 5, 0, 0, 0)),
        ("2024-01-05T08:00:00+08:00", utc(2024, 1, 5, 0, 0, 0)),
        ("2024-01-05T00:00:00Z", utc(2024, 1, 5, 0, 0, 0)),
        ("2024-01-05T01:30:00.250+09:30", pd.Timestamp("2024-01-04 16:00:00.250", tz="UTC")),
        ("2024-01-05", utc(2024, 1, 4, 16, 0, 0)),
        ("2024/01/05", utc(2024, 1, 4, 16, 0, 0)),
        ("2024/1/5", utc(2024, 1, 4, 16, 0, 0)),
        ("2024/01/05 08:30", utc(2024, 1, 5, 0, 30, 0)),
        ("２０２４-０１-０５ ０８:００:００", utc(2024, 1, 5, 0, 0, 0)),
        ("2024年1月5日", utc(2024, 1, 4, 16, 0, 0)),
        ("2024年1月5日 8时30分", utc(2024, 1, 5, 0, 30, 0)),
        # a date without its day or month: dateutil would fill them in from today
        ("2025年", None),
        ("2025年3月", None),
        ("2025-03", None),
        ("2024-02-30", None),
        ("05/01/2024", None),
        ("12", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_datetimes(raw, expected):
    got = nz.parse_datetimes(pd.Series([raw], dtype=object))
    assert str(got.dt.tz) == "UTC"
    assert na(got.iloc[0]) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("12,000", 12000.0),
        ("12000.50", 12000.5),
        ("１２０００", 12000.0),
        ("¥12,000", 12000.0),
        ("￥ 12000", 12000.0),
        ("CNY 12000", 12000.0),
        ("12000元", 12000.0),
        ("1.2万", 12000.0),
        ("3万元", 30000.0),
        ("0.5亿", 50000000.0),
        ("-100", -100.0),
        ("abc", None),
        ("1.2.3", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_amounts(raw, expected):
    assert one(nz.parse_amounts, raw) == expected


# ------------------------------------------- fast path == per-value reference


def _messy_values(n: int, seed: int = 7) -> dict[str, list]:
    rnd = random.Random(seed)
    fw = str.maketrans("0123456789", "０１２３４５６７８９")

    def mobile():
        return f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}"

    phone_fmts = [
        lambda m: m,
        lambda m: "+86 " + m[:3] + "-" + m[3:7] + "-" + m[7:],
        lambda m: "86" + m,
        lambda m: "0086 " + m,
        lambda m: m.translate(fw),
        lambda m: m[:3] + " " + m[3:7] + " " + m[7:],
        lambda m: "0" + m,
        lambda m: m[:-1],
        lambda m: "010-" + m[3:11],
        lambda m: "(0755) " + m[3:7] + " " + m[7:],
        lambda m: "garbage",
        lambda m: "",
        lambda m: None,
        lambda m: "+1 650 253 " + m[-4:],
    ]
    surn = "王李张刘陈杨黄赵吴周徐孙马朱胡郭單曾區張劉陳楊黃趙尉"
    given = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超偉華國誌紅迟"
    out: dict[str, list] = {
        k: [] for k in ("phone", "id", "uscc", "name", "address", "email", "ip", "account", "datetime", "amount")
    }
    for i in range(n):
        out["phone"].append(rnd.choice(phone_fmts)(mobile()))
        body = f"{rnd.choice(['110105', '440305', '999999', '310101'])}{rnd.randrange(1900, 2030)}{rnd.randrange(0, 14):02d}{rnd.randrange(0, 32):02d}{rnd.randrange(1000):03d}"
        idv = make_id(body) if rnd.random() < 0.8 else body + rnd.choice("0123456789Xx")
        idv = rnd.choice([idv, idv.lower(), " " + idv, idv[:6] + idv[8:17], idv.translate(fw), idv[:10], "", None])
        out["id"].append(idv)
        u = make_uscc(f"9{rnd.choice('1234')}{rnd.randrange(10**6):06d}{rnd.randrange(10**9):09d}")
        out["uscc"].append(rnd.choice([u, u.lower(), u[:17] + "A", u[:10], "", None]))
        nm = rnd.choice(surn) + rnd.choice(given) + rnd.choice(["", rnd.choice(given)])
        out["name"].append(
            rnd.choice([nm, " ".join(nm), nm[0] + "・" + nm[1:], "Zhāng Sān", f"Li{i % 50} Si", "ＡＢＣ公司", "", None])
        )
        addr = f"{rnd.choice(['中国', '', '中華人民共和國'])}广东省深圳市{rnd.choice(['南山區', '福田区'])} {rnd.randrange(200)}{rnd.choice(['號樓', '幢', '栋', '#'])}{rnd.randrange(3000)}{rnd.choice(['房', '室', ''])}"
        out["address"].append(rnd.choice([addr, addr.translate(fw), "", None]))
        out["email"].append(rnd.choice([f"User{i}@QQ.com", f" u{i}@163.com ", f"bad{i}", "", None]))
        out["ip"].append(
            rnd.choice(
                [
                    f"{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(300)}",
                    f"2001:db8:{rnd.randrange(65536):x}::{rnd.randrange(65536):x}",
                    "01.2.3.4",
                    "x",
                    None,
                ]
            )
        )
        out["account"].append(
            rnd.choice([f"6222 {rnd.randrange(10**12):012d}", f"{rnd.randrange(10**6)}", "62x2", None])
        )
        y, mo, d, h = rnd.randrange(1985, 2030), rnd.randrange(1, 13), rnd.randrange(1, 31), rnd.randrange(24)
        out["datetime"].append(
            rnd.choice(
                [
                    f"{y}-{mo:02d}-{d:02d} {h:02d}:{i % 60:02d}:00",
                    f"{y}/{mo}/{d}",
                    f"{y}-{mo:02d}-{d:02d}",
                    f"{y}-{mo:02d}-{d:02d}T{h:02d}:00:00+08:00",
                    f"{y}/{mo:02d}/{d:02d} {h:02d}:30",
                    f"{y}年{mo}月{d}日",
                    "bad",
                    None,
                ]
            )
        )
        out["amount"].append(
            rnd.choice(
                [
                    f"{rnd.randrange(10**6):,}",
                    f"¥{rnd.randrange(10**6)}",
                    f"{rnd.randrange(100)}.{rnd.randrange(10)}万",
                    f"{rnd.randrange(10**6)}元",
                    "x",
                    None,
                ]
            )
        )
    return out


@pytest.fixture(scope="module")
def messy():
    return _messy_values(200_000)


def _reference(func, column_values):
    return [func(v) for v in column_values]


CASES = [
    ("phone", nz.normalize_phones, lambda v: list(nz._phone_one(v))),
    ("id", nz.normalize_id_numbers, lambda v: list(nz._id_one(v))),
    ("uscc", nz.normalize_uscc, lambda v: list(nz._uscc_one(v))),
    ("name", nz.normalize_names, lambda v: list(nz._name_one(v))),
    ("name", nz.name_pinyin_key, lambda v: nz._pinyin_key_from_name(nz._name_one(v)[0])),
    ("address", nz.normalize_addresses, lambda v: [nz._address_one(v)]),
    ("email", nz.normalize_emails, lambda v: list(nz._email_one(v))),
    ("ip", nz.normalize_ips, lambda v: list(nz._ip_one(v))),
    ("account", nz.normalize_accounts, lambda v: list(nz._account_one(v))),
    ("email", nz.normalize_device_ids, nz._device_one),
    ("datetime", nz.parse_datetimes, nz._datetime_one),
    ("amount", nz.parse_amounts, nz._amount_one),
]


@pytest.mark.slow
@pytest.mark.parametrize("column, func, ref", CASES, ids=[f"{c[0]}-{c[1].__name__}" for c in CASES])
def test_fast_path_matches_reference(messy, column, func, ref):
    values = pd.Series(messy[column], dtype=object, index=np.arange(len(messy[column])) * 3)
    out = func(values)
    assert len(out) == len(values) and out.index.equals(values.index)
    sample = random.Random(1).sample(range(len(values)), 3000)
    for i in sample:
        row = out.iloc[i]
        got = [na(v) for v in row.tolist()] if isinstance(out, pd.DataFrame) else na(row)
        want = ref(values.iloc[i])
        want = [na(v) for v in want] if isinstance(want, list) else na(want)
        assert got == want, (values.iloc[i], got, want)


def test_str_dtype_input_same_as_object():
    raw = ["+86 138-0013-8000", None, "", "张三"]
    a = nz.normalize_phones(pd.Series(raw, dtype=object))
    b = nz.normalize_phones(pd.Series(raw, dtype="str"))
    assert a["phone"].tolist() == b["phone"].tolist() or a.equals(b)


def test_non_string_input_never_raises():
    s = pd.Series([13800138000, 1.2, None, b"x", object()], dtype=object)
    for func in (
        nz.normalize_phones,
        nz.normalize_id_numbers,
        nz.normalize_uscc,
        nz.normalize_names,
        nz.name_pinyin_key,
        nz.normalize_addresses,
        nz.normalize_emails,
        nz.normalize_ips,
        nz.normalize_accounts,
        nz.normalize_device_ids,
        nz.parse_datetimes,
        nz.parse_amounts,
    ):
        out = func(s)
        assert len(out) == len(s)
    assert nz.normalize_phones(s)["phone"].iloc[0] == "+8613800138000"


def test_empty_series():
    empty = pd.Series([], dtype=object)
    assert list(nz.normalize_phones(empty).columns) == ["phone", "phone_valid"]
    assert len(nz.parse_datetimes(empty)) == 0
    assert len(nz.name_pinyin_key(empty)) == 0


# --------------------------------------------------------------------------
# the one definition of each checksum, checked against python-stdnum
# --------------------------------------------------------------------------


def test_id_check_chars_agree_with_stdnum():
    rng = np.random.default_rng(11643)
    bodies = ["".join(map(str, row)) for row in rng.integers(0, 10, size=(3000, 17))]
    got = nz.id_check_chars(bodies)
    assert got.dtype == np.dtype("U1")
    assert got.tolist() == [stdnum_ric.calc_check_digit(b + "0") for b in bodies]
    assert set(got.tolist()) == set("0123456789X")  # every check character was exercised
    assert nz.id_check_chars(np.array([], dtype="U17")).tolist() == []


def test_id_check_codes_is_what_normalize_and_the_generator_use():
    bodies = ["11010519491231002", "44030519851231002", "11010519900307123"]
    digits = np.array([[int(c) for c in b] for b in bodies])
    assert bytes(nz.id_check_codes(digits)).decode() == "".join(nz.id_check_chars(bodies))
    ids = people.resident_ids(
        np.random.default_rng(0),
        np.array(["110105"] * 400),
        np.full(400, np.datetime64("1990-03-07")),
        np.arange(400) % 2 == 0,
    )
    assert all(stdnum_ric.is_valid(i) for i in ids)
    assert nz.normalize_id_numbers(pd.Series(ids))["id_checksum_ok"].all()


def test_uscc_check_index_agrees_with_stdnum():
    rng = np.random.default_rng(32100)
    body = np.concatenate([rng.integers(0, 10, size=(2000, 8)), rng.integers(0, 31, size=(2000, 9))], axis=1)
    got = [nz.USCC_ALPHABET[i] for i in nz.uscc_check_index(body)]
    texts = ["".join(nz.USCC_ALPHABET[i] for i in row) for row in body]
    assert got == [stdnum_uscc.calc_check_digit(s + "0") for s in texts]
    codes = [s + c for s, c in zip(texts, got)]
    assert nz.normalize_uscc(pd.Series(codes))["uscc_valid"].all()
    assert all(stdnum_uscc.is_valid(c) for c in people.usccs(np.random.default_rng(1), np.array(["440300"] * 300)))
