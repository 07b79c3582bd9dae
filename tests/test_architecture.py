"""The layers of docs/architecture.md are kept by import-linter, and the events between them are
the ones the document lists.

Each wrong import below is written into a copy of the source tree (the real tree is never
touched: other test processes read it) and ``lint-imports`` — the command ``make test`` runs —
must refuse it, naming the contract it breaks; the same copy without it passes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from videobank import events

# Each test runs a command, server or worker in a process of its own.
pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("videobank", "signaling", "queueing", "kyc", "workflows", "recordings")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> list[dict]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["importlinter"]["contracts"]


def contract_name(contract_id: str) -> str:
    return next(c["name"] for c in contracts() if c["id"] == contract_id)


def lint_imports(tree: Path) -> tuple[int, str, set[str]]:
    """Run lint-imports on ``tree``: its exit code, its output, and the contracts it broke."""
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "500", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    broken = {
        name
        for contract in contracts()
        if re.search(re.escape(name := contract["name"]) + r"\s+BROKEN", output)
    }
    return done.returncode, output, broken


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the source tree (Python files and the contracts) to break."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=lambda _dir, names: [
                n for n in names if n == "__pycache__" or (Path(n).suffix not in ("", ".py"))
            ],
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_hold_on_the_real_tree():
    code, output, broken = lint_imports(ROOT)
    assert code == 0, output
    assert not broken
    assert f"Contracts: {len(contracts())} kept, 0 broken." in output


WRONG_IMPORTS = [
    # (module to write into, the line, the contract it breaks, what the report says)
    (
        "queueing/selectors.py",
        "from workflows import services as workflow_services",
        "apps-layered",
        "queueing.selectors -> workflows.services",
    ),
    (
        "videobank/fields.py",
        "from recordings import services as recording_services",
        "apps-layered",
        "videobank.fields -> recordings.services",
    ),
    (
        "kyc/services.py",
        "from kyc import views as kyc_views",
        "kyc-inside",
        "kyc.services is not allowed to import kyc.views",
    ),
    (
        "workflows/services.py",
        "from kyc import views as kyc_views",
        "transport-on-top",
        "workflows.services -> kyc.views",
    ),
    (  # hidden in a function, as imports were to dodge the cycle: still an import
        "queueing/services.py",
        "def _dodge():\n    from workflows import services as workflow_services",
        "apps-layered",
        "queueing.services -> workflows.services",
    ),
    (
        "queueing/routing.py",
        "from django.conf import settings",
        "pure-modules",
        "queueing.routing is not allowed to import django",
    ),
]


@pytest.mark.parametrize(("module", "line", "contract_id", "says"), WRONG_IMPORTS)
def test_a_wrong_import_breaks_the_contract_that_forbids_it(tree, module, line, contract_id, says):
    code, output, broken = lint_imports(tree)  # the copy as it is: every contract kept
    assert code == 0, output
    assert not broken, output

    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # the wrong way\n")
    code, output, broken = lint_imports(tree)
    assert code == 1, output
    assert contract_name(contract_id) in broken, output
    assert says in output


def test_a_new_module_must_be_placed_in_a_layer(tree):
    """A module nobody placed is refused, so no module slips under every contract."""
    (tree / "videobank" / "shortcut.py").write_text("from kyc import services\n")
    code, output, broken = lint_imports(tree)
    assert code == 1, output
    assert broken == {contract_name("platform-placed")}, output
    assert "videobank.shortcut" in output


def test_both_contracts_list_the_same_platform_modules():
    by_id = {c["id"]: c for c in contracts()}
    apps = {m.strip() for m in by_id["apps-layered"]["layers"][-1].split(":")}
    placed = {f"videobank.{m.strip()}" for m in by_id["platform-placed"]["layers"][-1].split(":")}
    assert apps == placed


# --- the events between the layers -------------------------------------------------------------


def test_the_event_table_in_the_docs_is_the_registry():
    """docs/architecture.md lists every event, who sends it and who listens: as registered."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = {}
    for row in re.findall(r"^\| `(\w+)` \|.*\| (.*) \|$", text, flags=re.MULTILINE):
        event, listeners = row
        table[event] = sorted(re.findall(r"`([\w.]+)`", listeners))
    registry = {
        event.__name__: sorted(events.handler_name(h) for h in events.listeners(event))
        for event in events.EVENTS
    }
    assert table == registry


def test_a_listener_that_cannot_take_the_event_is_refused_at_start_up():
    def listener(*, call): ...

    with pytest.raises(TypeError, match="cannot take CallEnded"):
        events.on(events.CallEnded, listener)
    assert listener not in events.listeners(events.CallEnded)
