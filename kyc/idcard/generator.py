"""Synthetic second-generation resident ID cards with their ground truth, for tests and benchmarks.

Nothing here resembles a real person: names, addresses and numbers are drawn at random (numbers
are well-formed, with valid check characters, so the checks have something to pass). The pictures
follow the layout of the real card closely enough for OCR to face the same problems: a labelled
front with the photo on the right and the number along the bottom, a back with the issuing
authority and the validity period, CJK fonts, a faint patterned background. ``card_in_frame``
puts a card into a 640×480 camera frame the way a customer holds it up in a video call.

Fonts come from the Debian packages ``fonts-noto-cjk`` and ``fonts-wqy-microhei``.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from .numbers import id_number_make
from .regions import Region, region_all
from .validation import add_years, age_on, china_today, validity_years

CARD_MM = (85.6, 54.0)  # ISO/IEC 7810 ID-1

# Population shares of the 2020 census (per cent), rounded; the smallest groups get a floor so
# that a few thousand draws still meet them now and then.
ETHNICITIES: dict[str, float] = {
    "汉": 91.11, "壮": 1.36, "维吾尔": 0.84, "回": 0.81, "苗": 0.78, "满": 0.74, "彝": 0.70,
    "土家": 0.68, "藏": 0.50, "蒙古": 0.45, "布依": 0.25, "侗": 0.25, "瑶": 0.23, "白": 0.15,
    "哈尼": 0.12, "朝鲜": 0.12, "黎": 0.11, "哈萨克": 0.11, "傣": 0.09, "畲": 0.05, "傈僳": 0.05,
    "东乡": 0.06, "仡佬": 0.04, "拉祜": 0.03, "佤": 0.03, "水": 0.03, "纳西": 0.02, "羌": 0.02,
    "土": 0.02, "仫佬": 0.02, "锡伯": 0.01, "柯尔克孜": 0.01, "景颇": 0.01, "达斡尔": 0.01,
    "撒拉": 0.01, "布朗": 0.01, "毛南": 0.01, "塔吉克": 0.005, "普米": 0.005, "阿昌": 0.005,
    "怒": 0.003, "鄂温克": 0.003, "京": 0.003, "基诺": 0.002, "德昂": 0.002, "保安": 0.002,
    "俄罗斯": 0.002, "裕固": 0.002, "乌孜别克": 0.002, "门巴": 0.002, "鄂伦春": 0.002,
    "独龙": 0.002, "赫哲": 0.002, "高山": 0.002, "珞巴": 0.002, "塔塔尔": 0.002,
}  # fmt: skip

SURNAMES: dict[str, float] = {
    "王": 7.1, "李": 7.2, "张": 6.6, "刘": 5.4, "陈": 4.6, "杨": 3.1, "黄": 2.2, "赵": 2.1,
    "吴": 2.0, "周": 1.9, "徐": 1.6, "孙": 1.5, "马": 1.5, "朱": 1.3, "胡": 1.3, "郭": 1.2,
    "何": 1.2, "高": 1.1, "林": 1.1, "罗": 0.9, "郑": 0.8, "梁": 0.8, "谢": 0.7, "宋": 0.6,
    "唐": 0.6, "许": 0.6, "韩": 0.6, "冯": 0.6, "邓": 0.6, "曹": 0.5, "彭": 0.5, "曾": 0.5,
    "肖": 0.5, "田": 0.5, "董": 0.5, "袁": 0.4, "潘": 0.4, "于": 0.4, "蒋": 0.4, "蔡": 0.4,
    "余": 0.4, "杜": 0.4, "叶": 0.4, "程": 0.4, "苏": 0.3, "魏": 0.3, "吕": 0.3, "丁": 0.3,
    "任": 0.3, "沈": 0.3, "姚": 0.3, "卢": 0.3, "姜": 0.3, "崔": 0.3, "钟": 0.3, "谭": 0.3,
    "陆": 0.3, "汪": 0.3, "范": 0.3, "金": 0.3, "石": 0.3, "廖": 0.3, "贾": 0.2, "夏": 0.2,
    "韦": 0.2, "付": 0.2, "方": 0.2, "白": 0.2, "邹": 0.2, "孟": 0.2, "熊": 0.2, "秦": 0.2,
    "邱": 0.2, "江": 0.2, "尹": 0.2, "薛": 0.2, "闫": 0.2, "段": 0.2, "雷": 0.2, "侯": 0.2,
    "龙": 0.2, "史": 0.2, "陶": 0.2, "黎": 0.2, "贺": 0.2, "顾": 0.2, "毛": 0.2, "郝": 0.2,
    "龚": 0.2, "邵": 0.2, "万": 0.2, "钱": 0.2, "严": 0.2, "覃": 0.1, "武": 0.1, "戴": 0.1,
    "莫": 0.1, "孔": 0.1, "向": 0.1, "汤": 0.1, "欧阳": 0.05, "上官": 0.01, "司马": 0.01,
    "诸葛": 0.01,
}  # fmt: skip

GIVEN_MALE = (
    "伟强磊军洋勇杰涛明超刚平辉鹏飞峰宇浩博文斌鑫俊昊轩建国"
    "华东龙海波志宁毅健林亮成凯泽晨子天睿然翔彬坤晓家振"
)
GIVEN_FEMALE = (
    "芳娜敏静丽艳娟秀霞桂英红玉兰凤洁梅琳燕欣怡婷雪慧颖萱诗涵琪佳悦雨梦晶倩莉瑶思婉月晓春丹"
)
# Names written as transliterations with a middle dot (given name · father's name).
DOTTED_ETHNICITIES = {"维吾尔", "哈萨克", "柯尔克孜", "塔吉克", "乌孜别克", "塔塔尔"}
DOTTED_MALE = ["艾力", "买买提", "阿不都", "热合曼", "吐尔逊", "依明", "艾尔肯", "阿迪力", "木拉提"]
DOTTED_FEMALE = ["古丽", "阿依古丽", "帕提古丽", "迪丽拜尔", "热依拉", "米日古丽", "努尔"]
TIBETAN_NAMES = ["扎西顿珠", "次仁卓玛", "格桑", "达瓦", "尼玛次仁", "央金", "普布", "拉姆"]
MONGOLIAN_NAMES = ["巴特尔", "其木格", "乌兰", "苏日娜", "额尔敦", "朝鲁", "格日勒"]

STREET_WORDS = [
    "人民", "解放", "中山", "建设", "和平", "胜利", "新华", "文化", "长江", "黄河", "东风", "青年",
    "朝阳", "光明", "幸福", "友谊", "延安", "花园", "学府", "科技", "滨江", "环城", "工业", "府前",
    "迎宾", "民主", "团结", "振兴", "北京", "南京", "天山", "金桥", "龙华", "春晖", "育才", "丰收",
]  # fmt: skip
STREET_KINDS = ["路", "街", "大道", "东路", "西路", "南路", "北路", "大街", "巷"]
ESTATE_WORDS = ["阳光", "锦绣", "翠苑", "金色", "碧水", "紫荆", "明珠", "华庭", "书香", "和谐"]
TOWN_WORDS = ["安宁", "城关", "永丰", "太平", "新民", "河口", "石桥", "白沙", "长乐", "双龙"]
VILLAGE_WORDS = ["大坪", "柳树", "红星", "新街", "高桥", "李家", "王庄", "东湾", "前进", "杨柳"]

FONT_DIRS = [Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/truetype/wqy")]
# (file, face index): the SC faces of the Noto collections, WenQuanYi Micro Hei.
FONT_FACES: dict[str, tuple[str, int]] = {
    "sans": ("NotoSansCJK-Regular.ttc", 2),
    "sans-bold": ("NotoSansCJK-Bold.ttc", 2),
    "serif": ("NotoSerifCJK-Regular.ttc", 2),
    "mono": ("NotoSansCJK-Regular.ttc", 7),
    "wqy": ("wqy-microhei.ttc", 0),
}
VALUE_FONTS = ("sans", "serif", "wqy")


@dataclass(frozen=True)
class Person:
    """A synthetic card holder: everything printed on both sides of the card."""

    name: str
    sex: str  # 男 / 女
    ethnicity: str  # as printed, without 族: 汉, 维吾尔
    birth: dt.date
    address: str
    id_number: str
    authority: str  # 签发机关
    valid_from: dt.date
    valid_until: dt.date | None  # None: 长期 (no end)

    @property
    def birth_text(self) -> str:
        return f"{self.birth:%Y%m%d}"

    @property
    def validity_text(self) -> str:
        end = "长期" if self.valid_until is None else f"{self.valid_until:%Y.%m.%d}"
        return f"{self.valid_from:%Y.%m.%d}-{end}"

    def front_fields(self) -> dict[str, str]:
        """Ground truth for the front, in the form the OCR service returns it."""
        return {
            "name": self.name,
            "sex": self.sex,
            "ethnicity": self.ethnicity,
            "birth": self.birth_text,
            "address": self.address,
            "id_number": self.id_number,
        }

    def back_fields(self) -> dict[str, str]:
        return {"authority": self.authority, "validity": self.validity_text}


# --- random people -----------------------------------------------------------------------------


def _weighted(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _name(rng: random.Random, sex: str, ethnicity: str) -> str:
    male = sex == "男"
    if ethnicity in DOTTED_ETHNICITIES and rng.random() < 0.7:
        own = rng.choice(DOTTED_MALE if male else DOTTED_FEMALE)
        father = rng.choice(DOTTED_MALE)
        return f"{own}·{father}"
    if ethnicity == "藏" and rng.random() < 0.7:
        return rng.choice(TIBETAN_NAMES)
    if ethnicity == "蒙古" and rng.random() < 0.5:
        return rng.choice(MONGOLIAN_NAMES)
    pool = GIVEN_MALE if male else GIVEN_FEMALE
    given = "".join(rng.choice(pool) for _ in range(1 if rng.random() < 0.25 else 2))
    return _weighted(rng, SURNAMES) + given


def _address(rng: random.Random, region: Region) -> str:
    number = rng.randint(1, 999)
    street = rng.choice(STREET_WORDS) + rng.choice(STREET_KINDS)
    kind = rng.random()
    if kind < 0.35:
        tail = f"{street}{number}号"
    elif kind < 0.6:
        tail = (
            f"{street}{number}号院{rng.randint(1, 30)}号楼"
            f"{rng.randint(1, 6)}单元{rng.randint(1, 28)}{rng.randint(1, 4):02d}号"
        )
    elif kind < 0.85:
        estate = rng.choice(ESTATE_WORDS) + rng.choice(["小区", "花园", "家园", "新村"])
        tail = f"{street}{number}号{estate}{rng.randint(1, 40)}栋{rng.randint(101, 2804)}室"
    else:
        town = rng.choice(TOWN_WORDS) + rng.choice(["镇", "乡"])
        village = rng.choice(VILLAGE_WORDS) + "村"
        tail = f"{town}{village}{rng.randint(1, 12)}组{rng.randint(1, 150)}号"
    return region.name + tail


def person_random(
    rng: random.Random | None = None,
    *,
    today: dt.date | None = None,
    min_age: int = 18,
    max_age: int = 80,
    expired: bool = False,
    sex: str | None = None,
    ethnicity: str | None = None,
) -> Person:
    """A random, internally consistent card holder. The card is valid on ``today`` unless
    ``expired``, in which case its validity period ended before ``today``."""
    rng = rng or random.Random()  # noqa: S311  (test data, not secrets)
    today = today or china_today()
    regions = region_all()
    home = rng.choice(regions)
    # Most people still live where they were born; the number keeps the birth place for life.
    born_in = home if rng.random() < 0.8 else rng.choice(regions)
    sex = sex or rng.choice(["男", "女"])
    ethnicity = ethnicity or _weighted(rng, ETHNICITIES)
    for _ in range(1000):
        age_days = rng.randint(min_age * 365 + 1, max_age * 365 + 300)
        birth = today - dt.timedelta(days=age_days)
        # Second-generation cards have been issued since 2004; not before the age of 0.
        earliest = max(dt.date(2004, 1, 1), birth)
        back = rng.randint(0, 20 * 366)
        issued = today - dt.timedelta(days=back)
        if issued < earliest:
            continue
        if issued.month == 2 and issued.day == 29:
            issued = issued.replace(day=28)
        years = validity_years(age_on(birth, issued))
        until = None if years is None else add_years(issued, years)
        is_expired = until is not None and until < today
        if is_expired == expired:
            break
    else:  # pragma: no cover - only for impossible age ranges
        raise ValueError("no consistent card for these constraints")
    sequence = rng.randrange(1, 1000, 2) if sex == "男" else rng.randrange(0, 1000, 2)
    return Person(
        name=_name(rng, sex, ethnicity),
        sex=sex,
        ethnicity=ethnicity,
        birth=birth,
        address=_address(rng, home),
        id_number=id_number_make(region=born_in.code, birth=birth, sequence=sequence),
        authority=home.authority,
        valid_from=issued,
        valid_until=until,
    )


# --- drawing -----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def card_font(kind: str, size: int) -> ImageFont.FreeTypeFont:
    """A CJK font of the installed Debian packages (fonts-noto-cjk, fonts-wqy-microhei)."""
    filename, index = FONT_FACES[kind]
    for folder in FONT_DIRS:
        path = folder / filename
        if path.exists():
            return ImageFont.truetype(str(path), size, index=index)
    if kind != "sans":
        return card_font("sans", size)
    raise RuntimeError(
        "No CJK font found: install the Debian packages fonts-noto-cjk and fonts-wqy-microhei."
    )


def _background(size: tuple[int, int], rng: random.Random, tint: tuple[int, int, int]):
    """Pale paper with a gradient and the fine wave pattern of the security print."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.empty((h, w, 3), np.float32)
    for c in range(3):
        base[..., c] = 246 - (246 - tint[c]) * (0.35 + 0.65 * x / w) * 0.5
    phase = rng.uniform(0, math.tau)
    lines = np.abs(np.sin(y / h * 70 + np.sin(x / w * 9 + phase) * 2.5))
    rosette = np.abs(np.sin(np.hypot(x - w * 0.4, y - h * 0.5) / w * 90 + phase))
    base -= ((lines < 0.08) | (rosette < 0.05))[..., None] * np.array([14, 9, 5], np.float32)
    base += rng.uniform(-1, 1) + np.asarray(
        np.random.default_rng(rng.randrange(2**32)).normal(0, 2.0, (h, w, 1)), np.float32
    )
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _rounded(card: Image.Image, radius: int) -> Image.Image:
    """RGBA card with rounded corners (transparent outside)."""
    mask = Image.new("L", card.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, card.width - 1, card.height - 1), radius, 255)
    out = card.convert("RGBA")
    out.putalpha(mask)
    return out


def _silhouette(size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, (236, 238, 240))
    d = ImageDraw.Draw(img)
    grey = (150, 154, 160)
    d.ellipse((w * 0.28, h * 0.14, w * 0.72, h * 0.62), fill=grey)
    d.ellipse((w * 0.05, h * 0.66, w * 0.95, h * 1.45), fill=grey)
    return img


def _portrait(portrait: Image.Image | str | Path | None, size: tuple[int, int]) -> Image.Image:
    if portrait is None:
        return _silhouette(size)
    if not isinstance(portrait, Image.Image):
        portrait = Image.open(portrait)
    # The card photo is a head-and-shoulders crop: cover the box, keep the top of the head.
    img = portrait.convert("RGB")
    scale = max(size[0] / img.width, size[1] / img.height)
    resized = img.resize(
        (round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS
    )
    left = (resized.width - size[0]) // 2
    top = max(0, (resized.height - size[1]) // 4)
    return resized.crop((left, top, left + size[0], top + size[1]))


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if line and font.getlength(line + ch) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line] if line else lines


def _spaced(draw, xy, text: str, font, fill, spacing: float) -> float:
    x, y = xy
    for ch in text:
        draw.text((x, y), ch, font=font, fill=fill)
        x += font.getlength(ch) + spacing
    return x


LABEL_BLUE = (40, 110, 170)
INK = (20, 20, 24)


def card_front(
    person: Person,
    *,
    portrait: Image.Image | str | Path | None = None,
    dpmm: float = 10.0,
    font: str | None = None,
    rng: random.Random | None = None,
) -> Image.Image:
    """The photo side (RGBA, rounded corners, ``dpmm`` pixels per millimetre: 856×540 at 10).

    ``portrait``: a face photo (image or path) for the photo area; a grey silhouette without one.
    ``font``: one of ``VALUE_FONTS`` for the printed values; random when None.
    """
    rng = rng or random.Random()  # noqa: S311
    font = font or rng.choice(VALUE_FONTS)
    w, h = round(CARD_MM[0] * dpmm), round(CARD_MM[1] * dpmm)
    card = _background((w, h), rng, tint=(200, 222, 232))
    d = ImageDraw.Draw(card)

    def mm(v: float) -> float:
        return v * dpmm

    label = card_font("sans", round(mm(2.9)))
    value = card_font(font, round(mm(3.3)))
    name_font = card_font(font, round(mm(3.9)))
    number_font = card_font("mono", round(mm(4.2)))

    photo_box = (round(mm(56)), round(mm(7)), round(mm(82)), round(mm(40)))
    photo = _portrait(portrait, (photo_box[2] - photo_box[0], photo_box[3] - photo_box[1]))
    card.paste(photo, photo_box[:2])

    x_label, x_value = mm(6), mm(16.5)
    d.text((x_label, mm(7.5)), "姓 名", font=label, fill=LABEL_BLUE)
    d.text((x_value, mm(7.0)), person.name, font=name_font, fill=INK)

    d.text((x_label, mm(14.5)), "性 别", font=label, fill=LABEL_BLUE)
    d.text((x_value, mm(14.3)), person.sex, font=value, fill=INK)
    d.text((mm(28), mm(14.5)), "民 族", font=label, fill=LABEL_BLUE)
    d.text((mm(38), mm(14.3)), person.ethnicity, font=value, fill=INK)

    d.text((x_label, mm(21.5)), "出 生", font=label, fill=LABEL_BLUE)
    x = x_value
    for part, unit in (
        (str(person.birth.year), "年"),
        (str(person.birth.month), "月"),
        (str(person.birth.day), "日"),
    ):
        d.text((x, mm(21.3)), part, font=value, fill=INK)
        x += value.getlength(part) + mm(1.2)
        d.text((x, mm(21.5)), unit, font=label, fill=LABEL_BLUE)
        x += label.getlength(unit) + mm(1.5)

    d.text((x_label, mm(28.5)), "住 址", font=label, fill=LABEL_BLUE)
    # Long addresses are printed smaller rather than cut: at most three lines.
    for size in (3.3, 3.0, 2.8, 2.6):
        address_font = card_font(font, round(mm(size)))
        address_lines = _wrap(person.address, address_font, mm(52.5) - x_value)
        if len(address_lines) <= 3:
            break
    for i, line in enumerate(address_lines):
        d.text((x_value, mm(28.3) + i * mm(size + 1.3)), line, font=address_font, fill=INK)

    d.text((x_label, mm(46.5)), "公民身份号码", font=label, fill=LABEL_BLUE)
    _spaced(d, (mm(32), mm(45.8)), person.id_number, number_font, INK, spacing=mm(0.55))
    return _rounded(card, round(mm(3.2)))


def _emblem(draw: ImageDraw.ImageDraw, centre: tuple[float, float], r: float) -> None:
    """A stand-in for the national emblem: red disc, gold ring and five stars."""
    cx, cy = centre
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(200, 30, 30), outline=(230, 180, 40))
    draw.ellipse((cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8), outline=(230, 180, 40))

    def star(x: float, y: float, s: float) -> None:
        pts = []
        for k in range(10):
            ang = -math.pi / 2 + k * math.pi / 5
            rad = s if k % 2 == 0 else s * 0.4
            pts.append((x + rad * math.cos(ang), y + rad * math.sin(ang)))
        draw.polygon(pts, fill=(250, 215, 60))

    star(cx, cy - r * 0.25, r * 0.3)
    for k in range(4):
        ang = math.pi * (-0.9 + 0.27 * k)
        star(cx + r * 0.55 * math.cos(ang), cy - r * 0.25 + r * 0.55 * math.sin(ang), r * 0.1)


def card_back(
    person: Person,
    *,
    dpmm: float = 10.0,
    font: str | None = None,
    rng: random.Random | None = None,
) -> Image.Image:
    """The emblem side: 中华人民共和国 居民身份证, 签发机关 and 有效期限.

    RGBA with rounded corners, like ``card_front``."""
    rng = rng or random.Random()  # noqa: S311
    font = font or rng.choice(VALUE_FONTS)
    w, h = round(CARD_MM[0] * dpmm), round(CARD_MM[1] * dpmm)
    card = _background((w, h), rng, tint=(236, 214, 200))
    d = ImageDraw.Draw(card)

    def mm(v: float) -> float:
        return v * dpmm

    _emblem(d, (mm(15), mm(14)), mm(9))
    _spaced(d, (mm(29), mm(8.5)), "中华人民共和国", card_font("sans", round(mm(4.4))), INK, mm(1.6))
    _spaced(d, (mm(22), mm(19.5)), "居民身份证", card_font("sans-bold", round(mm(7))), INK, mm(2.4))

    label = card_font("sans", round(mm(2.9)))
    value = card_font(font, round(mm(3.3)))
    d.text((mm(14), mm(39)), "签发机关", font=label, fill=LABEL_BLUE)
    d.text((mm(31), mm(38.8)), person.authority, font=value, fill=INK)
    d.text((mm(14), mm(46)), "有效期限", font=label, fill=LABEL_BLUE)
    d.text((mm(31), mm(45.8)), person.validity_text, font=value, fill=INK)
    return _rounded(card, round(mm(3.2)))


# --- camera frames -----------------------------------------------------------------------------


def _scene(width: int, height: int, rng: random.Random) -> Image.Image:
    """An indoor-looking backdrop: a dim gradient wall, a shirt-coloured block (the customer holding
    the card) and sensor noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.array([rng.randint(90, 170), rng.randint(90, 160), rng.randint(80, 150)], np.float32)
    img = wall * (0.75 + 0.35 * (x / width))[..., None] * (0.9 + 0.15 * (y / height))[..., None]
    shirt = np.array([rng.randint(20, 120), rng.randint(20, 120), rng.randint(40, 160)], np.float32)
    torso = ((x - width / 2) / (width * 0.45)) ** 2 + ((y - height * 1.25) / (height * 0.7)) ** 2
    img = np.where((torso < 1)[..., None], shirt, img)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 4, (height, width, 1))
    return Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8))


def _vp8_roundtrip(image: Image.Image, bitrate: int) -> Image.Image:
    """What one frame of a WebRTC video looks like after VP8 at ``bitrate`` bits per second."""
    import av  # only here: generation without video compression needs no codec library

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = image.size
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = Fraction(15)
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frame = av.VideoFrame.from_image(image.convert("RGB"))
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    decoder = av.CodecContext.create("libvpx", "r")
    for packet in packets:
        for decoded in decoder.decode(packet):
            return decoded.to_image()
    raise RuntimeError("VP8 round trip gave no frame")


def card_in_frame(
    card_img: Image.Image,
    *,
    width: int = 640,
    height: int = 480,
    rotate_deg: float = 0,
    scale: float = 0.9,
    offset: tuple[float, float] = (0.0, 0.0),
    background: Image.Image | tuple[int, int, int] | None = None,
    blur: float = 0,
    jpeg_quality: int | None = None,
    vp8_bitrate: int | None = None,
    rng: random.Random | None = None,
) -> Image.Image:
    """The card held up to a camera: an RGB ``width``×``height`` frame.

    ``scale``: card width as a share of the frame width; ``rotate_deg``: counter-clockwise
    (180 = upside down); ``offset``: shift of the card centre, as shares of the frame size;
    ``background``: image or colour (an indoor scene when None); ``blur``: Gaussian radius in
    frame pixels (out of focus, moving hand); ``jpeg_quality`` / ``vp8_bitrate``: compress the
    frame as a phone photo or as a video frame would be.
    """
    rng = rng or random.Random()  # noqa: S311
    if background is None:
        frame = _scene(width, height, rng)
    elif isinstance(background, Image.Image):
        frame = ImageOps.fit(background.convert("RGB"), (width, height))
    else:
        frame = Image.new("RGB", (width, height), background)
    card = card_img if card_img.mode == "RGBA" else card_img.convert("RGBA")
    target_w = max(1, round(width * scale))
    card = card.resize(
        (target_w, round(card.height * target_w / card.width)), Image.Resampling.LANCZOS
    )
    if rotate_deg:
        card = card.rotate(rotate_deg, resample=Image.Resampling.BICUBIC, expand=True)
    cx = width / 2 + offset[0] * width
    cy = height / 2 + offset[1] * height
    frame.paste(card, (round(cx - card.width / 2), round(cy - card.height / 2)), card)
    if blur:
        frame = frame.filter(ImageFilter.GaussianBlur(blur))
    if vp8_bitrate:
        frame = _vp8_roundtrip(frame, vp8_bitrate)
    if jpeg_quality:
        out = io.BytesIO()
        frame.save(out, format="JPEG", quality=jpeg_quality)
        frame = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    return frame


def card_flat(card_img: Image.Image, *, background: tuple[int, int, int] = (255, 255, 255)):
    """A full-size render as an RGB scan: the card on a plain background, nothing else."""
    flat = Image.new("RGB", card_img.size, background)
    flat.paste(card_img, (0, 0), card_img if card_img.mode == "RGBA" else None)
    return flat


__all__ = [
    "ETHNICITIES",
    "Person",
    "add_years",
    "age_on",
    "card_back",
    "card_flat",
    "card_front",
    "card_in_frame",
    "china_today",
    "person_random",
    "validity_years",
]
