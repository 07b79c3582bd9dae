"""ID numbers and region codes: the arithmetic the validation relies on."""

from __future__ import annotations

import datetime as dt

import pytest

from kyc.idcard.numbers import (
    id_number_check_char,
    id_number_checksum_ok,
    id_number_clean,
    id_number_make,
    id_number_mask,
    id_number_parse,
)
from kyc.idcard.regions import COUNTIES, PROVINCES, province_name, region_all, region_lookup

# The worked examples of GB 11643-1999 (a woman born 1949-12-31 in Beijing's 朝阳区, a man born
# 1880-01-01 in Guangdong): published numbers, not computed by the code under test.
STANDARD_EXAMPLES = {
    "11010519491231002X": ("女", dt.date(1949, 12, 31)),
    "440524188001010014": (
        "男",
        dt.date(1880, 1, 1),
    ),
}


@pytest.mark.parametrize("number", sorted(STANDARD_EXAMPLES))
def test_standard_examples_have_the_right_check_character(number):
    assert id_number_check_char(number[:17]) == number[17]
    assert id_number_checksum_ok(number)


@pytest.mark.parametrize("number", sorted(STANDARD_EXAMPLES))
def test_parse_gives_birth_date_sex_and_region(number):
    parts = id_number_parse(number)
    sex, birth = STANDARD_EXAMPLES[number]
    assert parts.sex == sex
    assert parts.birth == birth
    assert parts.region == number[:6]
    assert parts.check == number[17]


def test_every_single_wrong_digit_is_caught_by_the_check_character():
    number = "11010519491231002X"
    for position in range(17):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            altered = number[:position] + digit + number[position + 1 :]
            assert not id_number_checksum_ok(altered), altered


def test_swapped_neighbours_are_caught():
    number = "440524188001010014"
    for i in range(16):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not id_number_checksum_ok(swapped), swapped


def test_make_gives_valid_numbers_with_the_sex_in_the_sequence():
    man = id_number_make(region="310104", birth=dt.date(1990, 3, 7), sequence=447)
    woman = id_number_make(region="310104", birth=dt.date(1990, 3, 7), sequence=448)
    assert man.startswith("31010419900307447")
    assert id_number_checksum_ok(man)
    assert woman.startswith("31010419900307448")
    assert id_number_checksum_ok(woman)
    assert id_number_parse(man).sex == "男"
    assert id_number_parse(woman).sex == "女"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"region": "3101", "birth": dt.date(1990, 1, 1), "sequence": 1},
        {"region": "310104", "birth": dt.date(1990, 1, 1), "sequence": 1000},
    ],
)
def test_make_refuses_malformed_parts(kwargs):
    with pytest.raises(ValueError, match="must be"):
        id_number_make(**kwargs)


@pytest.mark.parametrize(
    "bad", ["", "1101051949123100", "11010519491231002Y", "1101051949123100XX"]
)
def test_parse_refuses_what_is_not_an_id_number(bad):
    with pytest.raises(ValueError, match="18-character"):
        id_number_parse(bad)


def test_parse_reports_an_impossible_birth_date_as_none():
    first17 = "11010519490230002"  # 30 February
    parts = id_number_parse(first17 + id_number_check_char(first17))
    assert parts.birth is None
    assert parts.birth_digits == "19490230"


def test_clean_accepts_full_width_digits_lower_case_x_and_spaces():
    assert id_number_clean("１１０１０５ 19491231 002x") == "11010519491231002X"


def test_mask_hides_birth_date_and_sequence():
    assert id_number_mask("11010519491231002X") == "110105********002X"
    assert id_number_mask("") == ""
    assert "1949" not in id_number_mask("11010519491231002X")


def test_all_31_provinces_and_a_county_in_each():
    assert len(PROVINCES) == 31
    provinces_with_counties = {code[:2] for code in COUNTIES}
    assert provinces_with_counties == set(PROVINCES)
    assert all(len(code) == 6 and code.isdigit() for code in COUNTIES)


def test_region_names_and_authorities_read_like_the_card():
    assert region_lookup("440106").name == "广东省广州市天河区"
    assert region_lookup("440106").authority == "广州市公安局天河分局"
    assert region_lookup("110101").name == "北京市东城区"
    assert region_lookup("110101").authority == "北京市公安局东城分局"
    assert region_lookup("310115").authority == "上海市公安局浦东分局"
    assert region_lookup("513401").name == "四川省西昌市"
    assert region_lookup("513401").authority == "西昌市公安局"
    assert region_lookup("999999") is None
    assert province_name("510107") == "四川省"
    assert province_name("990101") is None


def test_every_region_has_a_public_security_bureau():
    for region in region_all():
        assert region.authority.endswith(("公安局", "分局")), region
        assert region.name.startswith(PROVINCES[region.code[:2]]), region
