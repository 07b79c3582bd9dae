"""A stub's two keys: the API key its callers present (``X-Api-Key``) and the admin key of its
developer endpoints (``X-Admin-Key``; the API key never opens them: a caller of the API cannot
flip faults or read what the stub "sent" to a customer)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.http import HttpRequest, JsonResponse

from videobank.checks import value_published

from ..conf import outside_setting
from .answers import error_answer


@dataclass(frozen=True)
class StubKeys:
    api_setting: str  # e.g. COREBANK_STUB_API_KEY
    admin_setting: str  # e.g. COREBANK_STUB_ADMIN_KEY
    en: str  # the stub, for a person: "the core-banking stub"
    zh: str  # "核心系统模拟服务"

    def api_key(self) -> str:
        return str(outside_setting(self.api_setting, ""))

    def admin_key(self) -> str:
        return str(outside_setting(self.admin_setting, ""))

    def api_ok(self, request: HttpRequest) -> bool:
        expected = self.api_key()
        given = request.headers.get("X-Api-Key", "")
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def admin_ok(self, request: HttpRequest) -> bool:
        expected = self.admin_key()
        given = request.headers.get("X-Admin-Key", "")
        return (
            bool(expected)
            and expected != self.api_key()
            and hmac.compare_digest(given.encode(), expected.encode())
        )

    def unauthorized(self) -> JsonResponse:
        return error_answer(401, "unauthorized", "missing or wrong X-Api-Key")

    def forbidden(self) -> JsonResponse:
        return error_answer(
            403,
            "forbidden",
            "a developer endpoint of the stub: it needs the stub's admin key in X-Admin-Key "
            f"({self.admin_setting}); the API key does not open it",
            en=f"This developer endpoint needs {self.en}'s admin key.",
            zh=f"该开发者接口需要{self.zh}的管理密钥。",
        )

    def start_problems(self, *, dev_endpoints: bool) -> list[str]:
        """Why a stub process must not start (``manage.py <stub>``)."""
        return stub_key_problems(
            api=(self.api_setting, self.api_key()),
            admin=(self.admin_setting, self.admin_key()),
            dev_endpoints=dev_endpoints,
        )


def stub_key_problems(
    *, api: tuple[str, str], admin: tuple[str, str], dev_endpoints: bool
) -> list[str]:
    """Why a stub process must not start: its API key (``(name, value)``) unset or published;
    with developer endpoints, its admin key likewise, or the same as the API key."""
    problems = []
    keys = [api, admin] if dev_endpoints else [api]
    for name, value in keys:
        if not value.strip():
            problems.append(f"{name} is not set")
        elif value_published(value):
            problems.append(f"{name} still has a published default value")
    if dev_endpoints and admin[1] and admin[1] == api[1]:
        problems.append(f"{admin[0]} must differ from {api[0]}")
    return problems
