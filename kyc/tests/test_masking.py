"""What of a person the timeline and the logs keep: masks that keep enough to recognise a line,
never enough to reuse (the whole path, a call to the rows: tests/test_personal_data_at_rest.py)."""

from __future__ import annotations

import pytest

from kyc.national.masking import (
    address_mask,
    geolocation_coarse,
    id_number_mask,
    ip_mask,
    name_mask,
)
from workflows.catalogue import line, lines_masked, same


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("上海市浦东新区哨兵路7319号", "上海市***"),
        ("广东省深圳市南山区科技园1号", "广东省***"),
        ("内蒙古自治区呼和浩特市新城区", "内蒙古自治区***"),
        ("香港特别行政区中西区", "香港特别行政区***"),
        ("东华门街道1号", "东华***"),  # no province or city named: two characters
        ("", ""),
        (None, ""),
    ],
)
def test_an_address_keeps_its_city_or_province_only(address, masked):
    assert address_mask(address) == masked


def test_names_numbers_places_and_addresses_are_masked():
    assert name_mask("欧阳娜娜") == "欧***"
    assert name_mask("张伟") == "张*"
    assert id_number_mask("110101199003071233") == "110101********1233"
    assert ip_mask("203.0.113.57") == "203.0.113.*"
    assert ip_mask("2001:db8:1:2:3:4:5:6") == "2001:db8:1::*"
    assert ip_mask(None) is None
    assert ip_mask("not an address") == "*"
    assert geolocation_coarse({"lat": 31.230416, "lon": 121.473701, "accuracy_m": 12}) == {
        "lat": 31.2,
        "lon": 121.5,
    }
    assert geolocation_coarse(None) is None
    assert geolocation_coarse({"lat": "x"}) is None


def test_summary_lines_keep_personal_values_masked_on_the_timeline():
    lines = [
        line("New address", "新地址", same("上海市浦东新区哨兵路7319号"), personal="address"),
        line("Payee", "收款人", same("刘洋"), personal="name"),
        line("E-mail", "电子邮箱", same("zw@example.cn"), personal="email"),
        line("Memo", "附言", same("房租"), personal="text"),
        line("Amount", "金额", same("CNY 1,200.00"), kind="amount"),
    ]
    masked = {entry["label"]["en"]: entry["value"]["zh"] for entry in lines_masked(lines)}
    assert masked == {
        "New address": "上海市***",
        "Payee": "刘*",
        "E-mail": "z***@example.cn",
        "Memo": "***",
        "Amount": "CNY 1,200.00",
    }
    assert lines[0]["value"]["zh"] == "上海市浦东新区哨兵路7319号"  # the case keeps it in full
