"""Source vocabularies for the synthetic portfolio: names, places, businesses.

Region codes and place names come from python-stdnum's copy of the GB/T 2260
division codes, so generated ID numbers carry real birthplaces and addresses
read like real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from faker.providers.person.zh_CN import Provider as _FakerPerson

__all__ = [
    "Regions",
    "regions",
    "SURNAMES",
    "SURNAME_WEIGHTS",
    "GIVEN_MALE",
    "GIVEN_FEMALE",
    "GIVEN_CHARS",
    "TRADITIONAL",
    "HOMOPHONES",
    "BUSINESS_TYPES",
    "SMALL_SHOPS",
    "BRAND_CHARS",
    "EMPLOYERS",
    "BIG_EMPLOYERS",
    "ROADS",
    "COMMUNITIES",
    "MOBILE_PREFIXES",
    "EMAIL_DOMAINS",
    "RELATIONS_FAMILY",
    "RELATIONS_OTHER",
    "OFFICE_TOWERS",
    "CARD_BINS",
]

# Surnames with their population shares and gendered given names (1-2
# characters) from Faker's zh_CN person provider: plain data lists, drawn from
# with numpy so a million names cost one vectorised pick.
SURNAMES = np.array(list(_FakerPerson.last_names.keys()))
SURNAME_WEIGHTS = np.array(list(_FakerPerson.last_names.values()), dtype=float)
SURNAME_WEIGHTS = SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum()
GIVEN_MALE = np.array(sorted(set(_FakerPerson.first_names_male)))
GIVEN_FEMALE = np.array(sorted(set(_FakerPerson.first_names_female)))
#: single characters for building further two-character given names
GIVEN_CHARS = np.array(sorted(set("".join(_FakerPerson.first_names))))

# A small simplified -> traditional table for the mess: common surname, name
# and address characters (enough that 张伟 becomes 張偉 and 广东省 廣東省).
TRADITIONAL = str.maketrans(
    {
        "张": "張",
        "陈": "陳",
        "刘": "劉",
        "杨": "楊",
        "黄": "黃",
        "赵": "趙",
        "吴": "吳",
        "孙": "孫",
        "马": "馬",
        "郑": "鄭",
        "谢": "謝",
        "罗": "羅",
        "韩": "韓",
        "冯": "馮",
        "邓": "鄧",
        "萧": "蕭",
        "叶": "葉",
        "许": "許",
        "苏": "蘇",
        "钟": "鍾",
        "卢": "盧",
        "蒋": "蔣",
        "陆": "陸",
        "龚": "龔",
        "贾": "賈",
        "顾": "顧",
        "伟": "偉",
        "丽": "麗",
        "军": "軍",
        "涛": "濤",
        "华": "華",
        "国": "國",
        "东": "東",
        "红": "紅",
        "兰": "蘭",
        "凤": "鳳",
        "飞": "飛",
        "鹏": "鵬",
        "龙": "龍",
        "区": "區",
        "号": "號",
        "楼": "樓",
        "门": "門",
        "广": "廣",
        "贸": "貿",
        "电": "電",
        "业": "業",
        "单": "單",
        "园": "園",
        "汇": "匯",
        "庆": "慶",
        "宁": "寧",
        "宝": "寶",
        "达": "達",
        "发": "發",
        "兴": "興",
        "财": "財",
        "荣": "榮",
        "强": "強",
        "刚": "剛",
        "辉": "輝",
        "静": "靜",
        "丰": "豐",
        "县": "縣",
        "镇": "鎮",
        "乡": "鄉",
        "栋": "棟",
        "层": "層",
        "长": "長",
        "阳": "陽",
        "湾": "灣",
        "汉": "漢",
        "辽": "遼",
        "云": "雲",
        "贵": "貴",
    }
)
# Typos as they happen in typing: a character swapped for a same-sounding or
# similar-looking one (pinyin input picks the wrong candidate).
HOMOPHONES = str.maketrans(
    {
        "伟": "玮",
        "玮": "伟",
        "静": "晶",
        "丽": "莉",
        "莉": "丽",
        "华": "化",
        "明": "铭",
        "军": "君",
        "红": "宏",
        "宏": "红",
        "杰": "洁",
        "洁": "杰",
        "涛": "韬",
        "斌": "彬",
        "彬": "斌",
        "峰": "锋",
        "锋": "峰",
        "磊": "垒",
        "娟": "绢",
        "燕": "艳",
        "艳": "燕",
        "平": "萍",
        "萍": "平",
        "建": "健",
        "健": "建",
        "勇": "永",
        "永": "勇",
        "芳": "方",
        "霞": "侠",
        "婷": "亭",
        "浩": "皓",
        "宇": "雨",
        "林": "琳",
        "琳": "林",
        "晨": "辰",
        "辰": "晨",
        "鑫": "新",
        "欣": "馨",
        "佳": "嘉",
        "嘉": "佳",
        "海": "凯",
        "鹏": "朋",
        "飞": "菲",
        "秀": "琇",
        "英": "瑛",
        "路": "露",
        "号": "吴",
        "栋": "冻",
        "园": "圆",
        "城": "成",
    }
)

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
    ("富士康科技集团", 0.05),
    ("中国移动通信集团", 0.03),
    ("美团", 0.03),
    ("国家电网", 0.02),
    ("顺丰速运", 0.02),
    ("比亚迪股份有限公司", 0.02),
)
BIG_EMPLOYERS = tuple(name for name, _ in EMPLOYERS)

ROADS = np.array(
    [
        "人民路",
        "解放路",
        "中山路",
        "建设路",
        "和平路",
        "新华路",
        "文化路",
        "胜利路",
        "朝阳路",
        "幸福路",
        "长江路",
        "黄河路",
        "东风路",
        "迎宾大道",
        "科技路",
        "工业大道",
        "滨河路",
        "青年路",
    ]
)
COMMUNITIES = np.array(["花园", "小区", "家园", "新村", "公寓", "苑", "国际", "名都", "华府", "雅居"])

MOBILE_PREFIXES = np.array(
    [
        "130",
        "131",
        "132",
        "133",
        "135",
        "136",
        "137",
        "138",
        "139",
        "150",
        "151",
        "152",
        "153",
        "155",
        "156",
        "157",
        "158",
        "159",
        "166",
        "173",
        "175",
        "176",
        "177",
        "180",
        "181",
        "182",
        "183",
        "185",
        "186",
        "187",
        "188",
        "189",
        "191",
        "198",
        "199",
    ]
)
EMAIL_DOMAINS = np.array(["qq.com", "163.com", "126.com", "sina.com", "139.com", "foxmail.com", "outlook.com"])
# UnionPay debit BINs of the big banks (工行, 建行, 农行, 中行, 招行, 邮储 ...)
CARD_BINS = np.array(
    [
        "621700",
        "622202",
        "622848",
        "621661",
        "622588",
        "621799",
        "622262",
        "621483",
        "623668",
        "621226",
        "622700",
        "621098",
    ]
)
#: buildings where registration agents house hundreds of small firms
OFFICE_TOWERS = (
    "深圳市南山区科技园科苑路15号科兴科学园",
    "上海市浦东新区张江高科碧波路690号创业大厦",
    "杭州市西湖区文三路90号东部软件园",
    "广州市天河区体育西路103号维多利广场",
)
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
