"""Test citizens of the stub's registry: one of each answer.

=========  ==================  ======================================================
name       ID number           what a query gets
=========  ==================  ======================================================
张伟       110101199003071233  pass (three factors too, once a portrait is attached)
李娜       310104198512152025  pass
王芳       440304197808233049  revoked
陈静       510107199206114216  pass; ask with another name (e.g. 陈晶) for ``mismatch``
=========  ==================  ======================================================

Numbers with a valid check character that are in no registry entry (``not_found``):
``NOT_FOUND_NUMBERS``. Any registered number asked with another name gets ``mismatch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import Citizen, CitizenStatus
from .services import citizen_register


@dataclass(frozen=True)
class SeedCitizen:
    name: str
    id_number: str
    status: str = CitizenStatus.ACTIVE


CITIZENS = (
    SeedCitizen("张伟", "110101199003071233"),
    SeedCitizen("李娜", "310104198512152025"),
    SeedCitizen("王芳", "440304197808233049", CitizenStatus.REVOKED),
    SeedCitizen("陈静", "510107199206114216"),
)
NOT_FOUND_NUMBERS = ("110105200001010016", "320102198811115557")
MISMATCH_EXAMPLE = ("陈晶", "510107199206114216")


def registry_seed(*, portraits: dict[str, np.ndarray] | None = None) -> list[Citizen]:
    """Create (or refresh) the test citizens; ``portraits`` maps a seeded name to a face photo
    (RGB array) whose face becomes that person's reference portrait."""
    portraits = dict(portraits or {})
    unknown = set(portraits) - {c.name for c in CITIZENS}
    if unknown:
        raise ValueError(f"no seeded citizen named {', '.join(sorted(unknown))}")
    return [
        citizen_register(
            name=c.name, id_number=c.id_number, status=c.status, portrait=portraits.get(c.name)
        )
        for c in CITIZENS
    ]
