"""What of a person may appear in logs and on the call's timeline: the ID number with birth date
and sequence hidden, the name reduced to its first character, the address to its first part, the
IP address to its network, the place to about ten kilometres."""

from __future__ import annotations

import ipaddress
import re

from kyc.idcard.numbers import id_number_mask

__all__ = ["address_mask", "geolocation_coarse", "id_number_mask", "ip_mask", "name_mask"]


def name_mask(name: str | None) -> str:
    """张伟 → 张*, 欧阳娜娜 → 欧***: enough for a teller to recognise a log line, not a person."""
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


# The first administrative part of a Chinese address: a province, region or city.
_ADDRESS_HEAD = re.compile(r"^.{1,8}?(?:自治区|特别行政区|省|市)")


def address_mask(address: str | None) -> str:
    """上海市浦东新区哨兵路7319号 → 上海市***; 广东省深圳市南山区… → 广东省***: the city or the
    province, never the street. An address without one keeps its first two characters."""
    if not address:
        return ""
    text = str(address).strip()
    match = _ADDRESS_HEAD.match(text)
    head = match.group(0) if match else text[:2]
    return head + "***"


def ip_mask(ip: str | None) -> str | None:
    """203.0.113.57 → 203.0.113.*; an IPv6 address to its /48 (2001:db8:1::*)."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "*"
    if address.version == 4:
        return ".".join(str(address).split(".")[:3]) + ".*"
    network = ipaddress.ip_network(f"{address}/48", strict=False)
    return f"{network.network_address}*"


def geolocation_coarse(geolocation: dict | None) -> dict | None:
    """The place a browser shared, to one decimal of a degree (about 10 km): where the customer
    was, for the record, not their door."""
    if not isinstance(geolocation, dict):
        return None
    coarse = {}
    for key in ("lat", "lon"):
        value = geolocation.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            coarse[key] = round(float(value), 1)
    return coarse or None
