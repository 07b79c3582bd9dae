"""A row made once per request id (an idempotency key) on our side of an outside service: the
national check of a request id, the core-bank submission of a key.

``created_once(existing=..., same=..., create=...)``: in one transaction, the row already made
under the id (``same(row)`` says whether it is the same question, else refuses in words) or a new
one (``create()``, which also queues the work after commit); when another process made it at the
same moment (the database refused our unique id), that one stands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, transaction

Row = TypeVar("Row")


def created_once(
    *,
    existing: Callable[[], Row | None],
    same: Callable[[Row], Row],
    create: Callable[[], Row],
) -> Row:
    try:
        with transaction.atomic():
            found = existing()
            if found is not None:
                return same(found)
            return create()
    except IntegrityError:
        found = existing()
        if found is None:
            raise
        return same(found)
