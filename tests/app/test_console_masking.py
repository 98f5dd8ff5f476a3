"""Console masking by content and the plan rules, without a server."""

from __future__ import annotations

import pytest

from ringscope.app.dashboard import cypher
from ringscope.app.dashboard.masking import mask_content, mask_digits

ID = "110101199003071234"
PHONE = "13800138000"
ACCOUNT = "6222629455702932303"


def _digits(value) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


@pytest.mark.parametrize(
    "value",
    [
        ID,
        PHONE,
        ACCOUNT,
        "+86" + PHONE,
        int(ID),
        int(PHONE),
        float(ID),
        -int(PHONE),
        ID[::-1],
        PHONE[::-1],
        ACCOUNT[::-1],
        " ".join(ID),
        " - ".join(PHONE),
        ", ".join(ID[::-1]),
        "_".join(PHONE),
        "138-0013-8000",
        f"note: {ID} / {PHONE}",
        list(ID),
        [int(c) for c in PHONE],
        [ID, PHONE],
        {"id": ID, ID: 1},
        {"nested": [{"p": int(PHONE)}]},
    ],
)
def test_personal_numbers_are_masked_whatever_their_form(value):
    shown = _digits(mask_content(value))
    for secret in (ID, PHONE, ACCOUNT):
        for form in (secret, secret[::-1]):
            assert form[3:-3] not in shown, (value, mask_content(value))


@pytest.mark.parametrize(
    "value, shown",
    [
        ("广东省深圳市南山区科技园1号1栋1单元101室", "广东省深圳市****"),
        ({"address": "北京市朝阳区建国路88号"}, {"address": "北京市****"}),
        (["上海市浦东新区世纪大道100号"], ["上海市****"]),
    ],
)
def test_addresses_are_masked_by_content_too(value, shown):
    assert mask_content(value) == shown


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01",
        "2024-03-01T10:00:00",
        150000.0,
        12345678.9,
        "A00000001",
        42,
        True,
        None,
        "farm-device-1",
        "张伟",
        [1, 2, 3],
        {"amount": 150000.0},
        "110101********1234",
        "138****8000",
        "深圳市腾讯计算机系统有限公司",
        "广东省深圳市****",
    ],
)
def test_ordinary_values_pass_unchanged(value):
    assert mask_content(value) == value


def test_dates_and_times_from_the_server_pass_unchanged():
    from neo4j.time import DateTime

    when = DateTime(2024, 3, 1, 10, 0, 0, 123456789)
    assert mask_content(when) is when
    result = cypher.ConsoleResult(["at", "p"], [[when, int(PHONE)]], False, "r", 0.0)
    assert result.frame(mask=mask_content).iloc[0].tolist() == ["2024-03-01T10:00:00.123456789", "138*****000"]


def test_masked_runs_keep_three_digits_at_each_end():
    assert mask_digits(ID) == "110************234"
    assert mask_digits(ID[::-1]) == "432************011"
    assert mask_content(int(PHONE)) == "138*****000"


def test_email_is_masked_too():
    assert mask_content("write to jpqsp476@126.com") == "write to jp***@126.com"


def _ops(*names, details=None):
    details = details or {}
    return [(name, details.get(name, "")) for name in names]


@pytest.mark.parametrize(
    ("operators", "query_type", "reason"),
    [
        (_ops("ProduceResults", "LoadCSV"), "r", "LOAD CSV"),
        (_ops("ProduceResults", "ShowTransactions"), "r", "administration"),
        (_ops("ProduceResults", "TerminateTransactions"), "r", "administration"),
        (_ops("ProduceResults", "ShowSettings"), "r", "administration"),
        (_ops("AdministrationCommand"), "s", "administration"),
        (
            _ops(
                "ProduceResults",
                "ProcedureCall",
                details={"ProcedureCall": "apoc.cypher.runTimeboxed($autostring_0) :: (value :: MAP)"},
            ),
            "r",
            "apoc.cypher.runTimeboxed",
        ),
        (
            _ops("ProduceResults", "ProcedureCall", details={"ProcedureCall": "dbms.listConfig() :: (name :: STRING)"}),
            "s",
            "dbms.listConfig",
        ),
        (
            _ops(
                "ProduceResults",
                "Projection",
                details={"Projection": "apoc.cypher.runFirstColumnSingle($autostring_0, {}) AS x"},
            ),
            "r",
            "apoc.cypher.runFirstColumnSingle",
        ),
        (_ops("ProduceResults", "TransactionApply", "AllNodesScan"), "r", "TransactionApply"),
        (_ops("ProduceResults", "SomeOperatorFromNeo4j2030"), "r", "SomeOperatorFromNeo4j2030"),
        (_ops("ProduceResults", "Create"), "w", "read-only"),
    ],
)
def test_the_plan_decides(operators, query_type, reason):
    functions = {"apoc.cypher.runFirstColumnSingle", "apoc.text.join"}
    with pytest.raises(cypher.QueryRefused, match=reason.replace(".", r"\.")):
        cypher._check_plan(operators, query_type, functions)


def test_a_plain_read_plan_passes():
    operators = _ops(
        "ProduceResults",
        "Projection",
        "Expand(All)",
        "NodeByLabelScan",
        "ProcedureCall",
        details={
            "Projection": "apoc.text.join(x, $autostring_0) AS j",
            "ProcedureCall": "db.labels() :: (label :: STRING)",
        },
    )
    cypher._check_plan(operators, "r", {"apoc.cypher.runFirstColumnSingle", "apoc.text.join"})


@pytest.mark.parametrize(
    "operators, query_type, chinese",
    [
        (_ops("ProduceResults", "Create"), "w", "已拒绝：控制台是只读的，而此查询会写入（计划类型 'w'）。"),
        (_ops("ProduceResults", "LoadCSV"), "r", "已拒绝：LOAD CSV 会读取文件或网址"),
        (_ops("ProduceResults", "ShowDatabases"), "r", "已拒绝：控制台不执行管理命令（ShowDatabases）"),
        (
            _ops("ProduceResults", "SomeOperatorFromNeo4j2030"),
            "r",
            "已拒绝：执行计划含有 SomeOperatorFromNeo4j2030 算子",
        ),
    ],
)
def test_refusals_are_said_in_the_readers_language(operators, query_type, chinese):
    from ringscope.app.dashboard import i18n

    with pytest.raises(cypher.QueryRefused) as refused:
        cypher._check_plan(operators, query_type, set())
    assert str(refused.value).startswith("Refused")  # English for logs and tests
    assert i18n.tr(refused.value).startswith(chinese)
    with i18n.use_language("en"):
        assert i18n.tr(refused.value) == str(refused.value)


def test_the_cut_notice_in_chinese():
    from ringscope.app.dashboard.i18n import _

    result = cypher.ConsoleResult(["n"], [[1]], True, "r", 0.1, byte_capped=True, cut_cells=3)
    assert result.notice == "cut: the result reached the byte limit, later rows not shown; 3 cells shortened"
    assert result.notice_in(_) == "已截断：结果达到字节上限，之后的行未显示; 3 个单元格被截短"
