"""Every validation rule, passing and failing, with its words in both languages; and the card
generator, whose people must pass them all."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter

import pytest

from kyc.idcard.generator import ETHNICITIES, person_random
from kyc.idcard.numbers import id_number_check_char, id_number_make
from kyc.idcard.validation import (
    ETHNIC_GROUPS,
    NEEDS_REVIEW,
    add_years,
    id_card_back_checks,
    id_card_front_checks,
    id_number_checks,
    validity_parse,
    validity_years,
)

TODAY = dt.date(2026, 6, 1)
CJK = re.compile(r"[\u4e00-\u9fff]")


def by_rule(checks):
    return {c.rule: c for c in checks}


def front(**changes) -> dict:
    fields = {
        "name": "张伟",
        "sex": "男",
        "ethnicity": "汉",
        "birth": "19900307",
        "address": "上海市徐汇区漕溪北路595号",
        "id_number": id_number_make(region="310104", birth=dt.date(1990, 3, 7), sequence=447),
    }
    return fields | changes


def assert_explained(check, *, passed: bool, words: str = "", words_zh: str = ""):
    """A check a teller can act on: the verdict, English words, Chinese words."""
    assert check.passed is passed, check
    assert check.detail
    assert check.detail_zh
    assert check.detail != check.detail_zh
    assert CJK.search(check.detail_zh), check.detail_zh
    assert words in check.detail, check.detail
    assert words_zh in check.detail_zh, check.detail_zh


# --- the number --------------------------------------------------------------------------------


def test_a_genuine_front_passes_every_rule_and_says_what_was_checked():
    checks = by_rule(id_card_front_checks(front(), today=TODAY))
    assert set(checks) == {
        "id_number_format",
        "id_number_checksum",
        "id_number_region",
        "id_number_birth_date",
        "birth_date_matches",
        "sex_matches",
        "ethnicity_known",
    }
    for check in checks.values():
        assert_explained(check, passed=True)
    assert_explained(checks["id_number_region"], passed=True, words="上海市徐汇区")


@pytest.mark.parametrize(
    "number", ["31010419900307447", "3101041990030744777", "31010419900307447Y"]
)
def test_format_fails_for_wrong_length_or_characters(number):
    checks = by_rule(id_number_checks(number, today=TODAY))
    assert_explained(
        checks["id_number_format"], passed=False, words="18 characters", words_zh="18 位"
    )
    # What depends on a readable number is reported as not checked, never as passed.
    for rule in ("id_number_checksum", "id_number_region", "id_number_birth_date"):
        assert_explained(checks[rule], passed=False, words="Not checked", words_zh="无法核对")


def test_checksum_fails_for_one_wrong_digit_and_names_the_right_character():
    good = front()["id_number"]
    bad = good[:10] + str((int(good[10]) + 1) % 10) + good[11:]
    check = by_rule(id_number_checks(bad, today=TODAY))["id_number_checksum"]
    expected = id_number_check_char(bad[:17])
    assert_explained(check, passed=False, words=f"should be {expected}", words_zh=expected)


def test_region_of_a_known_province_but_unlisted_county_is_accepted():
    number = id_number_make(region="440999", birth=dt.date(1990, 1, 1), sequence=1)
    check = by_rule(id_number_checks(number, today=TODAY))["id_number_region"]
    assert_explained(check, passed=True, words="广东省", words_zh="区县未收录")


@pytest.mark.parametrize(
    ("region", "words", "words_zh"),
    [
        ("990101", "no province", "不是内地省级行政区代码"),
        ("440000", "whole province", "只到省级"),
    ],
)
def test_region_fails_for_an_unknown_province_or_a_bare_province_code(region, words, words_zh):
    number = id_number_make(region=region, birth=dt.date(1990, 1, 1), sequence=1)
    check = by_rule(id_number_checks(number, today=TODAY))["id_number_region"]
    assert_explained(check, passed=False, words=words, words_zh=words_zh)


@pytest.mark.parametrize(
    ("birth_digits", "words"),
    [("19900230", "not a calendar date"), ("20300101", "in the future"), ("18500101", "plausible")],
)
def test_birth_date_in_the_number_must_be_real_past_and_plausible(birth_digits, words):
    first17 = f"310104{birth_digits}447"
    number = first17 + id_number_check_char(first17)
    check = by_rule(id_number_checks(number, today=TODAY))["id_number_birth_date"]
    assert_explained(check, passed=False, words=words)


# --- front against the number ------------------------------------------------------------------


def test_printed_birth_date_must_match_the_number():
    checks = by_rule(id_card_front_checks(front(birth="19900308"), today=TODAY))
    assert_explained(
        checks["birth_date_matches"], passed=False, words="1990-03-08", words_zh="不一致"
    )


def test_printed_sex_must_match_the_17th_digit():
    checks = by_rule(id_card_front_checks(front(sex="女"), today=TODAY))
    assert_explained(checks["sex_matches"], passed=False, words="odd", words_zh="奇数")
    woman = id_number_make(region="310104", birth=dt.date(1990, 3, 7), sequence=448)
    checks = by_rule(id_card_front_checks(front(id_number=woman), today=TODAY))
    assert_explained(checks["sex_matches"], passed=False, words="even", words_zh="偶数")


def test_missing_birth_or_sex_is_not_checked_rather_than_passed():
    checks = by_rule(id_card_front_checks(front(birth="", sex=""), today=TODAY))
    assert_explained(checks["birth_date_matches"], passed=False, words="Not checked")
    assert_explained(checks["sex_matches"], passed=False, words="Not checked")


@pytest.mark.parametrize("ethnicity", ["汗", "", "汉族人"])
def test_ethnicity_must_be_one_of_the_56(ethnicity):
    check = by_rule(id_card_front_checks(front(ethnicity=ethnicity), today=TODAY))[
        "ethnicity_known"
    ]
    assert_explained(check, passed=False)


def test_the_56_ethnic_groups():
    assert len(ETHNIC_GROUPS) == 56
    assert set(ETHNICITIES) == ETHNIC_GROUPS


def test_name_and_address_have_no_checksum_and_need_the_tellers_eyes():
    assert {"name", "address"} <= NEEDS_REVIEW
    assert not {"id_number", "birth", "sex"} & NEEDS_REVIEW


# --- back --------------------------------------------------------------------------------------


def back(**changes) -> dict:
    return {"authority": "上海市公安局徐汇分局", "validity": "2016.05.20-2036.05.20"} | changes


def test_a_valid_back_passes_every_rule():
    checks = by_rule(id_card_back_checks(back(), birth=dt.date(1990, 3, 7), today=TODAY))
    assert set(checks) == {
        "validity_format",
        "validity_started",
        "validity_not_expired",
        "validity_period_length",
        "authority_format",
    }
    for check in checks.values():
        assert_explained(check, passed=True)
    assert_explained(checks["validity_period_length"], passed=True, words="age 26")


def test_expired_card_is_refused_with_its_end_date():
    checks = by_rule(id_card_back_checks(back(validity="2006.05.20-2016.05.20"), today=TODAY))
    assert_explained(
        checks["validity_not_expired"], passed=False, words="2016-05-20", words_zh="已于"
    )


def test_card_valid_until_today_is_not_expired():
    validity = "2006.06.01-2026.06.01"
    check = by_rule(id_card_back_checks(back(validity=validity), today=TODAY))
    assert check["validity_not_expired"].passed


def test_long_term_card_never_expires():
    checks = by_rule(
        id_card_back_checks(
            back(validity="2001.01.01-长期"), birth=dt.date(1950, 1, 1), today=TODAY
        )
    )
    assert_explained(checks["validity_not_expired"], passed=True, words_zh="长期")
    assert_explained(checks["validity_period_length"], passed=True)


def test_validity_starting_in_the_future_fails():
    checks = by_rule(id_card_back_checks(back(validity="2027.01.01-2047.01.01"), today=TODAY))
    assert_explained(checks["validity_started"], passed=False, words="2027-01-01")


@pytest.mark.parametrize("validity", ["2016.05.20-2031.05.20", "2016.05.20-2036.05.21"])
def test_validity_period_other_than_5_10_20_years_fails(validity):
    check = by_rule(id_card_back_checks(back(validity=validity), today=TODAY))
    assert_explained(check["validity_period_length"], passed=False, words="5, 10 or 20 years")


@pytest.mark.parametrize(
    ("birth", "validity", "passed"),
    [
        (dt.date(2012, 1, 1), "2020.01.01-2025.01.01", True),  # 8 years old: 5 years
        (dt.date(2000, 1, 1), "2020.01.01-2030.01.01", True),  # 20: 10 years
        (dt.date(1980, 1, 1), "2020.01.01-2040.01.01", True),  # 40: 20 years
        (dt.date(1960, 1, 1), "2020.01.01-长期", True),  # 60: no end
        (dt.date(1980, 1, 1), "2020.01.01-2030.01.01", False),  # 40 but 10 years
        (dt.date(1960, 1, 1), "2020.01.01-2040.01.01", False),  # 60 but 20 years
        (dt.date(2000, 1, 1), "2020.01.01-长期", False),  # 20 but no end
    ],
)
def test_validity_length_follows_the_age_at_issue(birth, validity, passed):
    checks = by_rule(id_card_back_checks(back(validity=validity), birth=birth, today=TODAY))
    check = checks["validity_period_length"]
    assert check.passed is passed, check
    if not passed:
        assert_explained(check, passed=False, words="should be valid for", words_zh="应为")


@pytest.mark.parametrize("validity", ["", "2016.05.20", "2016-05-20-2036-05-20", "长期"])
def test_unreadable_validity_fails_format_and_everything_after_it(validity):
    checks = by_rule(id_card_back_checks(back(validity=validity), today=TODAY))
    assert_explained(checks["validity_format"], passed=False, words="YYYY.MM.DD")
    for rule in ("validity_started", "validity_not_expired", "validity_period_length"):
        assert_explained(checks[rule], passed=False, words="Not checked")


@pytest.mark.parametrize("authority", ["上海市徐汇区人民政府", "", "公安局"])
def test_authority_must_be_a_public_security_bureau(authority):
    check = by_rule(id_card_back_checks(back(authority=authority), today=TODAY))
    assert_explained(check["authority_format"], passed=False)


def test_validity_helpers():
    assert validity_parse("2016.05.20-长期") == (dt.date(2016, 5, 20), None)
    assert validity_parse("2016.05.20-2036.05.20") == (dt.date(2016, 5, 20), dt.date(2036, 5, 20))
    assert add_years(dt.date(2012, 2, 29), 10) == dt.date(2022, 2, 28)
    assert [validity_years(a) for a in (15, 16, 25, 26, 45, 46)] == [5, 10, 10, 20, 20, None]


# --- the generator's people --------------------------------------------------------------------


def test_generated_people_pass_every_rule():
    rng = random.Random(1234)
    for _ in range(300):
        person = person_random(rng, today=TODAY)
        failed_front = [
            c for c in id_card_front_checks(person.front_fields(), today=TODAY) if not c.passed
        ]
        failed_back = [
            c
            for c in id_card_back_checks(person.back_fields(), birth=person.birth, today=TODAY)
            if not c.passed
        ]
        assert not failed_front, (person, failed_front)
        assert not failed_back, (person, failed_back)
        assert person.address.startswith(("北京", "天津", "上海", "重庆")) or re.match(
            r"^[\u4e00-\u9fff]+(省|自治区)", person.address
        ), person.address


def test_expired_people_fail_only_the_expiry_rule():
    rng = random.Random(99)
    for _ in range(50):
        person = person_random(rng, today=TODAY, expired=True)
        failed = {
            c.rule
            for c in id_card_back_checks(person.back_fields(), birth=person.birth, today=TODAY)
            if not c.passed
        }
        assert failed == {"validity_not_expired"}, person


def test_generated_ethnicities_are_mostly_han_but_not_only():
    rng = random.Random(7)
    counts = Counter(person_random(rng, today=TODAY).ethnicity for _ in range(1000))
    assert 0.85 < counts["汉"] / 1000 < 0.96
    assert len(counts) >= 5
