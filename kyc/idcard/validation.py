"""Rules a resident ID card's reading must satisfy, each explained in English and Chinese.

What can be checked: the number's form and ISO 7064 MOD 11-2 check character, its region prefix,
its birth date, and that the printed birth date and sex agree with it; on the back, that the
validity period is well-formed, has begun, has not ended and has the length the law sets for the
holder's age. Name, address and issuing authority carry no checksum: a misread character there is
silent, so those fields are always marked for the teller's eyes (``NEEDS_REVIEW``).

Every rule is reported whether it passed or not, so the teller sees what was checked; a rule that
cannot be evaluated (the number is unreadable) is reported as failed, with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from .numbers import (
    id_number_check_char,
    id_number_checksum_ok,
    id_number_parse,
    id_number_well_formed,
)
from .regions import province_name, region_lookup

CHINA_TZ = ZoneInfo("Asia/Shanghai")
# Name, address and authority have no checksum: a misread is invisible to the machine.
NEEDS_REVIEW = frozenset({"name", "address", "authority"})
OLDEST_AGE = 130

ETHNIC_GROUPS = frozenset(
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 "
    "怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺".split()
)
VALIDITY_RE = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})-(?:(\d{4})\.(\d{2})\.(\d{2})|长期)$")


@dataclass(frozen=True)
class Check:
    rule: str
    passed: bool
    detail: str
    detail_zh: str

    def as_dict(self) -> dict:
        return asdict(self)


def china_today() -> dt.date:
    """Card dates are Beijing dates."""
    return dt.datetime.now(tz=CHINA_TZ).date()


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def validity_years(age_at_issue: int) -> int | None:
    """Resident Identity Card Law art. 5: under 16 → 5 years, 16-25 → 10, 26-45 → 20, from 46 no
    end date (长期)."""
    if age_at_issue < 16:
        return 5
    if age_at_issue <= 25:
        return 10
    if age_at_issue <= 45:
        return 20
    return None


def validity_parse(text: str) -> tuple[dt.date, dt.date | None]:
    """``2015.03.01-2035.03.01`` or ``2015.03.01-长期`` → (start, end or None).

    ValueError if it is neither."""
    match = VALIDITY_RE.match(text or "")
    if not match:
        raise ValueError("not a validity period")
    y, m, d, y2, m2, d2 = match.groups()
    start = dt.date(int(y), int(m), int(d))
    end = None if y2 is None else dt.date(int(y2), int(m2), int(d2))
    return start, end


def _date_text(day: dt.date) -> str:
    return day.isoformat()


def birth_parse(text: str) -> dt.date | None:
    """``YYYYMMDD`` → date, None if it is not one."""
    if not re.fullmatch(r"\d{8}", text or ""):
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


# --- the number ----------------------------------------------------------------------------------


def _not_checked(rule: str, why: str, why_zh: str) -> Check:
    return Check(rule, False, f"Not checked: {why}.", f"无法核对：{why_zh}。")


def id_number_checks(number: str, *, today: dt.date | None = None) -> list[Check]:
    """Format, check character, region prefix and birth date of an ID number."""
    today = today or china_today()
    if not id_number_well_formed(number or ""):
        why, why_zh = "the ID number is not readable", "身份证号码无法识别"
        return [
            Check(
                "id_number_format",
                False,
                "An ID number has 18 characters: 17 digits, then a digit or X; "
                f"{len(number or '')} characters were read.",
                f"身份证号码应为 18 位（17 位数字加 1 位数字或 X），"
                f"实际识别到 {len(number or '')} 位。",
            ),
            _not_checked("id_number_checksum", why, why_zh),
            _not_checked("id_number_region", why, why_zh),
            _not_checked("id_number_birth_date", why, why_zh),
        ]
    checks = [
        Check(
            "id_number_format",
            True,
            "18 characters: 17 digits and a check character.",
            "18 位：17 位数字加 1 位校验码。",
        )
    ]
    expected = id_number_check_char(number[:17])
    if id_number_checksum_ok(number):
        checks.append(
            Check(
                "id_number_checksum",
                True,
                f"The check character {expected} is right (ISO 7064 MOD 11-2).",
                f"校验码 {expected} 正确（ISO 7064 MOD 11-2）。",
            )
        )
    else:
        checks.append(
            Check(
                "id_number_checksum",
                False,
                f"The last character should be {expected} but is {number[17]}: a digit was "
                "misread or the number is not genuine.",
                f"校验码应为 {expected}，实际为 {number[17]}：号码有误读或不是真实号码。",
            )
        )
    parts = id_number_parse(number)
    region = region_lookup(parts.region)
    province = province_name(parts.region)
    if region is not None:
        checks.append(
            Check(
                "id_number_region",
                True,
                f"Region code {parts.region}: {region.name}.",
                f"地区码 {parts.region}：{region.name}。",
            )
        )
    elif province is not None and parts.region[2:] != "0000":
        # Counties are renamed and merged every year; a known province is enough to accept.
        checks.append(
            Check(
                "id_number_region",
                True,
                f"Region code {parts.region}: in {province} (county not in our table).",
                f"地区码 {parts.region}：属于{province}（区县未收录）。",
            )
        )
    elif province is not None:
        checks.append(
            Check(
                "id_number_region",
                False,
                f"Region code {parts.region} names a whole province, not a county.",
                f"地区码 {parts.region} 只到省级，不是区县代码。",
            )
        )
    else:
        checks.append(
            Check(
                "id_number_region",
                False,
                f"Region code {parts.region}: {parts.region[:2]} is no province of the mainland.",
                f"地区码 {parts.region}：前两位 {parts.region[:2]} 不是内地省级行政区代码。",
            )
        )
    birth = parts.birth
    if birth is None:
        checks.append(
            Check(
                "id_number_birth_date",
                False,
                f"Digits 7-14 ({parts.birth_digits}) are not a calendar date.",
                f"第 7-14 位（{parts.birth_digits}）不是有效日期。",
            )
        )
    elif birth > today:
        checks.append(
            Check(
                "id_number_birth_date",
                False,
                f"The birth date in the number ({_date_text(birth)}) is in the future.",
                f"号码中的出生日期（{_date_text(birth)}）晚于今天。",
            )
        )
    elif age_on(birth, today) > OLDEST_AGE:
        checks.append(
            Check(
                "id_number_birth_date",
                False,
                f"The birth date in the number ({_date_text(birth)}) is not plausible.",
                f"号码中的出生日期（{_date_text(birth)}）不合理。",
            )
        )
    else:
        checks.append(
            Check(
                "id_number_birth_date",
                True,
                f"Born {_date_text(birth)} according to the number.",
                f"号码中的出生日期为 {_date_text(birth)}。",
            )
        )
    return checks


# --- front ---------------------------------------------------------------------------------------


def id_card_front_checks(fields: Mapping[str, str], *, today: dt.date | None = None) -> list[Check]:
    """All rules of the photo side: the number's own, then birth date, sex and ethnicity against
    it. ``fields`` as ``id_card_read_front`` returns them (``birth`` as YYYYMMDD)."""
    number = fields.get("id_number") or ""
    checks = id_number_checks(number, today=today)
    parts = id_number_parse(number) if id_number_well_formed(number) else None

    printed_birth = birth_parse(fields.get("birth") or "")
    if parts is None:
        checks.append(
            _not_checked(
                "birth_date_matches", "the ID number is not readable", "身份证号码无法识别"
            )
        )
    elif printed_birth is None:
        checks.append(
            _not_checked("birth_date_matches", "the birth date was not read", "未识别到出生日期")
        )
    elif fields.get("birth") == parts.birth_digits:
        checks.append(
            Check(
                "birth_date_matches",
                True,
                "The printed birth date is the one in the number.",
                "出生日期与号码一致。",
            )
        )
    else:
        checks.append(
            Check(
                "birth_date_matches",
                False,
                f"The printed birth date {_date_text(printed_birth)} differs from the number's "
                f"{parts.birth_digits}.",
                f"出生日期 {_date_text(printed_birth)} 与号码中的 {parts.birth_digits} 不一致。",
            )
        )

    sex = fields.get("sex") or ""
    if parts is None:
        checks.append(
            _not_checked("sex_matches", "the ID number is not readable", "身份证号码无法识别")
        )
    elif sex not in ("男", "女"):
        checks.append(_not_checked("sex_matches", "the sex was not read", "未识别到性别"))
    elif sex == parts.sex:
        checks.append(
            Check(
                "sex_matches",
                True,
                f"Sex {sex} agrees with the number (17th digit {parts.sequence % 10}).",
                f"性别 {sex} 与号码第 17 位（{parts.sequence % 10}）一致。",
            )
        )
    else:
        parity, parity_zh = ("odd", "奇数") if parts.sequence % 2 else ("even", "偶数")
        checks.append(
            Check(
                "sex_matches",
                False,
                f"The card says {sex}, but the 17th digit of the number ({parts.sequence % 10}) "
                f"is {parity}, which means {parts.sex}.",
                f"卡面性别为{sex}，但号码第 17 位（{parts.sequence % 10}）为{parity_zh}，"
                f"应为{parts.sex}。",
            )
        )

    ethnicity = fields.get("ethnicity") or ""
    if ethnicity in ETHNIC_GROUPS:
        checks.append(
            Check(
                "ethnicity_known",
                True,
                f"{ethnicity} is one of the 56 ethnic groups.",
                f"{ethnicity}族属于 56 个民族之一。",
            )
        )
    else:
        checks.append(
            Check(
                "ethnicity_known",
                False,
                f"'{ethnicity}' is not one of the 56 ethnic groups."
                if ethnicity
                else "The ethnicity was not read.",
                f"“{ethnicity}”不是 56 个民族之一。" if ethnicity else "未识别到民族。",
            )
        )
    return checks


# --- back ----------------------------------------------------------------------------------------


def id_card_back_checks(
    fields: Mapping[str, str],
    *,
    birth: dt.date | None = None,
    today: dt.date | None = None,
) -> list[Check]:
    """Rules of the emblem side: the validity period (format, begun, not ended, length for the
    holder's age when ``birth`` is known) and the issuing authority's form."""
    today = today or china_today()
    checks: list[Check] = []
    validity = fields.get("validity") or ""
    try:
        start, end = validity_parse(validity)
    except ValueError:
        why, why_zh = "the validity period is not readable", "有效期限无法识别"
        checks += [
            Check(
                "validity_format",
                False,
                "The validity period should read YYYY.MM.DD-YYYY.MM.DD or YYYY.MM.DD-长期"
                + (f"; read: {validity}." if validity else "; nothing was read."),
                "有效期限应为 YYYY.MM.DD-YYYY.MM.DD 或 YYYY.MM.DD-长期"
                + (f"，识别结果：{validity}。" if validity else "，未识别到。"),
            ),
            _not_checked("validity_started", why, why_zh),
            _not_checked("validity_not_expired", why, why_zh),
            _not_checked("validity_period_length", why, why_zh),
        ]
    else:
        checks.append(
            Check("validity_format", True, f"Validity period {validity}.", f"有效期限 {validity}。")
        )
        if start > today:
            checks.append(
                Check(
                    "validity_started",
                    False,
                    f"The card is valid only from {_date_text(start)}, a date still to come.",
                    f"证件自 {_date_text(start)} 起才有效，该日期尚未到来。",
                )
            )
        else:
            checks.append(
                Check(
                    "validity_started",
                    True,
                    f"Issued {_date_text(start)}.",
                    f"签发日期 {_date_text(start)}。",
                )
            )
        if end is None:
            checks.append(
                Check(
                    "validity_not_expired",
                    True,
                    "Valid without end date (长期).",
                    "长期有效。",
                )
            )
        elif end < today:
            checks.append(
                Check(
                    "validity_not_expired",
                    False,
                    f"The card expired on {_date_text(end)}.",
                    f"证件已于 {_date_text(end)} 过期。",
                )
            )
        else:
            checks.append(
                Check(
                    "validity_not_expired",
                    True,
                    f"Valid until {_date_text(end)}.",
                    f"有效期至 {_date_text(end)}。",
                )
            )
        checks.append(_period_length_check(start, end, birth))

    authority = fields.get("authority") or ""
    if re.fullmatch(r"[\u4e00-\u9fff]{2,}(公安局|分局)", authority):
        checks.append(
            Check(
                "authority_format",
                True,
                "The issuing authority is a public security bureau.",
                "签发机关为公安机关。",
            )
        )
    else:
        checks.append(
            Check(
                "authority_format",
                False,
                f"The issuing authority '{authority}' is not a public security bureau "
                "(…公安局 or …分局)."
                if authority
                else "The issuing authority was not read.",
                f"签发机关“{authority}”不是公安机关（…公安局或…分局）。"
                if authority
                else "未识别到签发机关。",
            )
        )
    return checks


def _period_length_check(start: dt.date, end: dt.date | None, birth: dt.date | None) -> Check:
    rule = "validity_period_length"
    if end is None:
        years: int | None = None
    else:
        years = next((n for n in (5, 10, 20) if add_years(start, n) == end), -1)
    if years == -1:
        assert end is not None  # -1 comes only from an end date that fits no length
        return Check(
            rule,
            False,
            f"A card is valid for 5, 10 or 20 years; {_date_text(start)} to {_date_text(end)} "
            "is none of these.",
            f"证件有效期应为 5 年、10 年或 20 年，"
            f"{_date_text(start)} 至 {_date_text(end)} 不符合。",
        )
    length = "no end date" if years is None else f"{years} years"
    length_zh = "长期" if years is None else f"{years} 年"
    if birth is None:
        return Check(
            rule,
            True,
            f"Valid for {length} (holder's age not known).",
            f"有效期 {length_zh}（持证人年龄未知）。",
        )
    age = age_on(birth, start)
    due = validity_years(age)
    due_text = "no end date" if due is None else f"{due} years"
    due_zh = "长期" if due is None else f"{due} 年"
    if due == years:
        return Check(
            rule,
            True,
            f"Issued at age {age}: valid for {due_text}, as the law sets.",
            f"签发时 {age} 岁：有效期 {due_zh}，符合规定。",
        )
    return Check(
        rule,
        False,
        f"Issued at age {age}, the card should be valid for {due_text}, but it is {length}.",
        f"签发时 {age} 岁，有效期应为 {due_zh}，实际为 {length_zh}。",
    )


def checks_passed(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)
