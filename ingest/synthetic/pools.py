"""Source vocabularies for the synthetic portfolio: names, places, businesses.

Region codes and place names come from python-stdnum's copy of the GB/T 2260
division codes, so generated ID numbers carry real birthplaces and addresses
read like real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Regions", "regions", "SURNAMES", "SURNAME_WEIGHTS", "GIVEN_CHARS", "TRADITIONAL", "BUSINESS_TYPES",
           "BRAND_CHARS", "EMPLOYERS", "ROADS", "MOBILE_PREFIXES", "EMAIL_DOMAINS"]

# The most common surnames with rough population shares (percent).
_SURNAMES = (
    "王7.1 李7.0 张6.7 刘5.4 陈4.5 杨3.1 黄2.2 赵2.1 吴2.0 周1.9 徐1.3 孙1.3 马1.2 朱1.1 胡1.0 郭1.0 何0.9 "
    "高0.9 林0.9 罗0.8 郑0.8 梁0.8 谢0.6 宋0.6 唐0.6 许0.6 韩0.5 冯0.5 邓0.5 曹0.5 彭0.5 曾0.5 肖0.5 田0.4 "
    "董0.4 袁0.4 潘0.4 于0.4 蒋0.4 蔡0.4 余0.4 杜0.4 叶0.4 程0.4 苏0.3 魏0.3 吕0.3 丁0.3 任0.3 沈0.3 姚0.3 "
    "卢0.3 姜0.3 崔0.3 钟0.3 谭0.3 陆0.3 汪0.3 范0.3 金0.3 石0.3 廖0.3 贾0.2 夏0.2 韦0.2 付0.2 方0.2 白0.2 "
    "邹0.2 孟0.2 熊0.2 秦0.2 邱0.2 江0.2 尹0.2 薛0.2 闫0.2 段0.2 雷0.2 侯0.2 龙0.2 史0.2 陶0.2 黎0.2 贺0.2 "
    "顾0.2 毛0.2 郝0.2 龚0.2 邵0.2 万0.2 钱0.2 严0.1 覃0.1 武0.1 戴0.1 莫0.1 孔0.1 单0.05 欧阳0.05 司马0.02"
)
SURNAMES = np.array([s.rstrip("0123456789.") for s in _SURNAMES.split()])
SURNAME_WEIGHTS = np.array([float(s.lstrip("".join(SURNAMES[i]))) for i, s in enumerate(_SURNAMES.split())])
SURNAME_WEIGHTS = SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum()

GIVEN_CHARS = np.array(list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强海燕红梅玉兰晓东小红文斌鹏飞春梅"
    "宇浩然子轩欣怡梓涵思远俊杰雨萱一诺嘉怡佳琪婷婷雪梅立新永刚凤英金凤淑珍光明卫东晨阳"
))

# A small traditional table for the mess: common surname and name characters.
TRADITIONAL = str.maketrans({
    "张": "張", "陈": "陳", "刘": "劉", "杨": "楊", "黄": "黃", "赵": "趙", "吴": "吳", "孙": "孫", "马": "馬",
    "郑": "鄭", "谢": "謝", "罗": "羅", "梁": "樑", "韩": "韓", "冯": "馮", "邓": "鄧", "萧": "蕭", "叶": "葉",
    "苏": "蘇", "钟": "鍾", "伟": "偉", "丽": "麗", "军": "軍", "涛": "濤", "华": "華", "国": "國", "东": "東",
    "红": "紅", "兰": "蘭", "凤": "鳳", "飞": "飛", "鹏": "鵬", "龙": "龍", "区": "區", "号": "號", "楼": "樓",
    "门": "門", "广": "廣", "圳": "圳", "市": "市", "贸": "貿", "电": "電", "业": "業", "门": "門", "单": "單",
    "园": "園", "汇": "匯", "庆": "慶", "宁": "寧", "宝": "寶", "达": "達", "发": "發", "兴": "興", "财": "財",
})

# (industry word, plausible monthly revenue range in CNY, business loan amount range)
BUSINESS_TYPES = (
    ("小吃店", (15_000, 80_000), (30_000, 200_000)),
    ("便利店", (30_000, 150_000), (30_000, 300_000)),
    ("理发店", (15_000, 60_000), (20_000, 150_000)),
    ("餐饮管理有限公司", (80_000, 600_000), (100_000, 1_000_000)),
    ("商贸有限公司", (100_000, 1_500_000), (100_000, 2_000_000)),
    ("电子科技有限公司", (150_000, 2_000_000), (200_000, 3_000_000)),
    ("建材经营部", (80_000, 800_000), (100_000, 1_500_000)),
    ("物流有限公司", (200_000, 2_000_000), (200_000, 3_000_000)),
    ("服装店", (20_000, 150_000), (30_000, 300_000)),
    ("五金店", (30_000, 200_000), (30_000, 400_000)),
    ("装饰工程有限公司", (100_000, 1_200_000), (100_000, 2_000_000)),
    ("农业专业合作社", (50_000, 500_000), (50_000, 1_000_000)),
)
#: industries small enough that millions a month are impossible
SMALL_SHOPS = tuple(i for i, b in enumerate(BUSINESS_TYPES) if b[1][1] <= 200_000)

BRAND_CHARS = np.array(list("鑫达华盛隆兴源泰宏发昌恒通利瑞祥福康安顺德嘉诚信和丰永金宝新创宇辉鸿"))

# (employer, share of consumer applicants) — the first few are big employers
EMPLOYERS = (
    ("富士康科技集团", 0.05), ("中国移动通信集团", 0.03), ("美团", 0.03), ("国家电网", 0.02),
    ("顺丰速运", 0.02), ("比亚迪股份有限公司", 0.02),
)
BIG_EMPLOYERS = tuple(name for name, _ in EMPLOYERS)

ROADS = np.array(["人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "文化路", "胜利路", "朝阳路",
                  "幸福路", "长江路", "黄河路", "东风路", "迎宾大道", "科技路", "工业大道", "滨河路", "青年路"])
COMMUNITIES = np.array(["花园", "小区", "家园", "新村", "公寓", "苑", "国际", "名都", "华府", "雅居"])

MOBILE_PREFIXES = np.array(["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                            "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "180",
                            "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199"])
EMAIL_DOMAINS = np.array(["qq.com", "163.com", "126.com", "sina.com", "139.com", "foxmail.com", "outlook.com"])
RELATIONS_FAMILY = np.array(["spouse", "parent", "sibling", "child"])
RELATIONS_OTHER = np.array(["friend", "colleague", "friend", "colleague", "other"])


@dataclass(frozen=True)
class Regions:
    """Current county-level division codes with province and city names."""

    codes: np.ndarray  # 6-digit strings
    province: np.ndarray
    city: np.ndarray
    county: np.ndarray
    weights: np.ndarray


@lru_cache(maxsize=1)
def regions() -> Regions:
    """County-level divisions still in use, from stdnum's GB/T 2260 table."""
    from stdnum import numdb

    db = numdb.get("cn/loc")
    codes, provinces, cities, counties = [], [], [], []

    def current(name: str) -> str | None:
        # Entries look like '东城区', '[1983-]桥东区' or '[-2010]崇文区'. Keep
        # only divisions valid for every birth year (no start, no end): an ID
        # number's region must have existed when its holder was born.
        return None if "[" in name else name

    for _, prov_code, _, prov_info, children in db.prefixes:
        province = prov_info.get("province", "")
        city_names = {}
        for _, code, _, info, _ in children:
            name = current(info.get("county", ""))
            if name and code.endswith("00"):
                city_names[code[:2]] = name
        for _, code, _, info, _ in children:
            name = current(info.get("county", ""))
            if not name or code.endswith("00") or name in ("市辖区", "县"):
                continue
            city = city_names.get(code[:2], province)
            codes.append(prov_code + code)
            provinces.append(province)
            cities.append(city if city not in ("市辖区", "县") else province)
            counties.append(name)
    codes_arr = np.array(codes)
    # more applicants from the populous coastal provinces
    heavy = {"44": 3.0, "33": 2.0, "32": 2.0, "37": 1.6, "41": 1.5, "51": 1.5, "35": 1.4, "11": 1.5, "31": 1.5}
    weights = np.array([heavy.get(c[:2], 1.0) for c in codes], dtype=float)
    return Regions(codes_arr, np.array(provinces), np.array(cities), np.array(counties), weights / weights.sum())
