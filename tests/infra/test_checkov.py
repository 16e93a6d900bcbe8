"""checkov on the template: no failed check, and every skip is one the template writes down.

checkov lives in its own venv (``make checkov``: ``.venv/tools/checkov``, pinned by
``requirements-checkov.lock``), since its pins conflict with ``requirements.lock``.
``FRUITS_CHECKOV`` names another checkov executable. Without one the tests skip, unless
``FRUITS_REQUIRE_CHECKOV=1`` (CI), when they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.infra.cfn import TEMPLATE

CHECKOV_VERSION = "3.3.30"
TOOL = PROJECT_ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"


def _checkov() -> Path:
    """The checkov executable: ``$FRUITS_CHECKOV`` or the tool venv's; skip or fail without it."""
    path = Path(os.environ.get("FRUITS_CHECKOV") or TOOL)
    if path.is_file():
        return path
    reason = f"checkov not found at {path} (make checkov, or set FRUITS_CHECKOV)"
    if os.environ.get("FRUITS_REQUIRE_CHECKOV") == "1":
        pytest.fail(f"FRUITS_REQUIRE_CHECKOV=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def checkov() -> Path:
    return _checkov()


@pytest.fixture(scope="module")
def scan(checkov: Path) -> dict[str, Any]:
    """checkov's JSON report of the template (offline: ``--skip-download``)."""
    result = subprocess.run(
        [
            str(checkov),
            "--file",
            str(TEMPLATE),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # checkov exits 1 when a check fails: the report says which.
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_checkov_is_the_pinned_version(checkov: Path) -> None:
    result = subprocess.run(
        [str(checkov), "--version"], capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.strip() == CHECKOV_VERSION


def test_checkov_finds_no_failed_check(scan: dict[str, Any]) -> None:
    failed = [(c["check_id"], c["resource"]) for c in scan["results"]["failed_checks"]]

    assert scan["check_type"] == "cloudformation"
    assert scan["summary"]["passed"] > 0
    assert failed == []


def test_checkov_skips_only_what_the_template_skips_with_a_reason(
    scan: dict[str, Any], template: dict[str, Any]
) -> None:
    written = {
        (skip["id"], f"{resource['Type']}.{name}")
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }

    skipped = {(c["check_id"], c["resource"]) for c in scan["results"]["skipped_checks"]}

    assert skipped == written
    assert all(c["check_result"]["suppress_comment"] for c in scan["results"]["skipped_checks"])
