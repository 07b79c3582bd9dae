#!/usr/bin/env python3
"""Dependency audit of the project's virtualenv, run by .ci/run.

1. pip-audit against its vulnerability service (PyPI's JSON API, which carries the PyPA
   advisory database). Any known vulnerability fails the run.
2. Where that service can't be reached — some CI machines reach only the package index's
   simple API — pip-audit marks every package "skipped". The audit then says so plainly and
   checks what the index itself publishes (PEP 691 JSON): an installed release that its authors
   yanked fails the run (yanking is how a broken or compromised release is withdrawn), and a
   newer patch release of the same minor line is listed (patch releases are where security
   fixes land), without failing: the index is not a vulnerability database.

Usage: audit.py VENV_PYTHON PIP_AUDIT   (both paths to executables)
Last line: ``audited=N vulnerable=N yanked=N behind_patch=N service=pypi|index-only``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

INDEX = "https://pypi.org/simple/{name}/"
TIMEOUT_S = 20


def installed(python: str) -> dict[str, str]:
    out = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {row["name"].lower(): row["version"] for row in json.loads(out)}


def pip_audit(pip_audit_bin: str, packages: dict[str, str]) -> tuple[list[dict], int]:
    """(vulnerable packages, how many the service could audit)."""
    requirements = "\n".join(f"{name}=={version}" for name, version in packages.items())
    proc = subprocess.run(
        [
            pip_audit_bin,
            "--no-deps",
            "--disable-pip",
            "-r",
            "/dev/stdin",
            "-f",
            "json",
            "--progress-spinner",
            "off",
        ],
        input=requirements,
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"pip-audit gave no report (exit {proc.returncode})") from None
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    return vulnerable, len(audited)


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.+-]", version))


def index_facts(name: str, version: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - a fixed https URL
        INDEX.format(name=name), headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            data = json.load(response)
    except Exception as exc:  # noqa: BLE001 - reported, the audit goes on
        return {"name": name, "version": version, "error": str(exc)}
    # A release's files: NAME-VERSION-... (wheels) or NAME-VERSION.tar.gz / .zip (sdists).
    stem = re.sub(r"[-_.]+", "[-_.]+", re.escape(name).replace("\\", ""))
    own = re.compile(rf"^{stem}-{re.escape(version)}(-|\.tar|\.zip)", re.IGNORECASE)
    files = [f for f in data.get("files", []) if own.match(f["filename"])]
    yanked = bool(files) and all(f.get("yanked") for f in files)
    final = [v for v in data.get("versions", []) if re.fullmatch(r"\d+(\.\d+)*", v)]
    line = version.split(".")[:2]
    same_line = [v for v in final if v.split(".")[:2] == line]
    newest = max(same_line, key=_version_key, default=version)
    behind = _version_key(newest) > _version_key(version)
    return {
        "name": name,
        "version": version,
        "yanked": yanked,
        "newest_patch": newest,
        "behind": behind,
    }


def main() -> int:
    python, pip_audit_bin = sys.argv[1], sys.argv[2]
    packages = installed(python)
    vulnerable, audited = pip_audit(pip_audit_bin, packages)
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"VULNERABLE {dep['name']} {dep['version']}: {ids}")
    service = "pypi"
    yanked = behind = 0
    if audited == 0:
        service = "index-only"
        print(
            f"pip-audit could audit none of the {len(packages)} packages: its vulnerability "
            "service is out of reach from this machine. Checking what the package index "
            "publishes instead (yanked releases, newer patch releases)."
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            facts = list(pool.map(lambda item: index_facts(*item), sorted(packages.items())))
        for fact in facts:
            if fact.get("error"):
                print(f"unknown   {fact['name']} {fact['version']}: index said {fact['error']}")
            elif fact["yanked"]:
                yanked += 1
                print(f"YANKED    {fact['name']} {fact['version']}: withdrawn by its authors")
            elif fact["behind"]:
                behind += 1
                print(f"behind    {fact['name']} {fact['version']} (newest {fact['newest_patch']})")
    print(
        f"audited={audited if service == 'pypi' else len(packages)} vulnerable={len(vulnerable)} "
        f"yanked={yanked} behind_patch={behind} service={service}"
    )
    return 1 if vulnerable or yanked else 0


if __name__ == "__main__":
    sys.exit(main())
