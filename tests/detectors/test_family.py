"""The family test's "answered in kind" check: the set-based path for a scope's
few edges equals the join it replaces, duplicates and odd relations included."""

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.family import _answered_in_kind, _answered_in_kind_joined, family_edges

RELATIONS = ["parent", "child", "spouse", "sibling", "friend", " Parent ", "", None, "CHILD", "配偶"]


@pytest.mark.parametrize("seed", range(5))
def test_answered_in_kind_equals_the_join(seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n = int(rng.integers(0, 40))
        apps = [f"A{i}" for i in range(int(rng.integers(1, 6)))]
        edges = pd.DataFrame(
            {
                "src": rng.choice(apps, n),
                "dst": rng.choice(apps, n),
                "phone": rng.choice(["p1", "p2", "p3"], n),
                "relation": [RELATIONS[i] for i in rng.integers(0, len(RELATIONS), n)],
            }
        )
        if trial % 2:  # Arrow-backed text, as the portfolio's tables are
            edges = edges.astype({"src": "str", "dst": "str", "phone": "str"})
        rel = edges["relation"].fillna("").astype(str).str.strip().str.lower()
        fast = _answered_in_kind(edges, rel)
        assert fast is not None
        assert fast.tolist() == _answered_in_kind_joined(edges, rel).tolist()


def test_missing_ends_are_left_to_the_join():
    edges = pd.DataFrame({"src": ["a", None], "dst": ["b", "a"], "phone": ["p", "q"], "relation": ["parent", "child"]})
    rel = edges["relation"]
    assert _answered_in_kind(edges, rel) is None
    info = pd.DataFrame({"surname": ["王", "李"], "address_key": ["h1", "h2"]}, index=["a", "b"])
    assert family_edges(edges, info).tolist() == [0.0, 0.0]  # the join: a None end never matches


def test_parent_and_child_answer_each_other():
    edges = pd.DataFrame({"src": ["a", "b"], "dst": ["b", "a"], "phone": ["p", "q"], "relation": ["parent", "child"]})
    info = pd.DataFrame({"surname": ["王", "李"], "address_key": ["h1", "h2"]}, index=["a", "b"])
    assert family_edges(edges, info).tolist() == [0.5, 0.5]


_TRICKY_TEXTS = [
    None,
    float("nan"),
    "",
    " ",
    "王伟",
    " 欧阳娜娜 ",
    "\u3000李\u3000",
    "司马 懿",
    "上海市浦东新区\u3000世纪大道 100 号 3 栋 0502 室",
    "北京市朝阳区建国路１２３号",
    "杭州市西湖区文三路 90 号",
    "0 0 00",
    "a\xa0b\u2003c",
]


@pytest.mark.parametrize("function", ["surnames", "home_keys"])
@pytest.mark.parametrize("dtype", [object, "str"])
def test_few_texts_in_python_equal_pandas_string_methods(monkeypatch, function, dtype):
    import ringscope.detectors.family as family

    values = pd.Series(_TRICKY_TEXTS, dtype=dtype, index=range(10, 10 + len(_TRICKY_TEXTS)))
    few = getattr(family, function)(values)
    monkeypatch.setattr(family, "_FEW_TEXTS", -1)
    many = getattr(family, function)(values)
    pd.testing.assert_series_equal(few, many)
