"""The two locks pin one set: requirements.lock (``make install``'s constraints, the source) and
poetry.lock (``poetry install``), which ``make lock`` generates from it. Read as files: no
Poetry, no network."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import pytest
from packaging.markers import Marker, default_environment
from packaging.utils import canonicalize_name
from packaging.version import Version

import fruits_kedro
from tests.conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

# `make install`'s machine: Linux x86-64, CPython 3.11, the main dependencies and the test extra.
MACHINE = {
    **default_environment(),
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
}
EXTRAS = frozenset({"test"})
# What Poetry 2.5 hashes into poetry.lock's content-hash (poetry/packages/locker.py).
HASHED_PROJECT_KEYS = ("requires-python", "dependencies", "optional-dependencies")
HASHED_POETRY_KEYS = ("dependencies", "source", "extras", "dev-dependencies", "group")


def requirements_pins(path: Path) -> dict[str, Version]:
    """``name==version`` lines of a requirements file, by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def _applies(package: dict[str, Any]) -> bool:
    """Whether Poetry installs a locked package on ``MACHINE`` with ``EXTRAS``."""
    if "main" not in package.get("groups", ["main"]):
        return False
    markers = package.get("markers")
    if isinstance(markers, dict):
        markers = markers.get("main")
    if not markers:
        return True
    marker = Marker(markers)
    return any(marker.evaluate({**MACHINE, "extra": extra}) for extra in EXTRAS | {""})


def poetry_pins(path: Path) -> dict[str, Version]:
    """The locked versions that apply on ``MACHINE``, by canonical name."""
    lock = tomllib.loads(path.read_text())
    return {
        canonicalize_name(package["name"]): Version(package["version"])
        for package in lock["package"]
        if _applies(package)
    }


def disagreements(poetry_lock: Path, requirements_lock: Path) -> list[str]:
    """Each package whose pins differ between the two locks, or that one of them lacks."""
    poetry, pip = poetry_pins(poetry_lock), requirements_pins(requirements_lock)
    return [
        f"{name}: poetry.lock {poetry.get(name)}, requirements.lock {pip.get(name)}"
        for name in sorted(poetry.keys() | pip.keys())
        if poetry.get(name) != pip.get(name)
    ]


def content_hash(pyproject: Path) -> str:
    """poetry.lock's content-hash for ``pyproject`` as Poetry 2.5 computes it (with a
    ``[project]`` table, its unset ``[tool.poetry]`` keys are left out)."""
    data = tomllib.loads(pyproject.read_text())
    project, poetry = data.get("project", {}), data.get("tool", {}).get("poetry", {})
    relevant: dict[str, Any] = {
        "project": {k: project[k] for k in HASHED_PROJECT_KEYS if k in project}
    }
    if data.get("dependency-groups"):
        relevant["dependency-groups"] = data["dependency-groups"]
    relevant["tool"] = {"poetry": {k: poetry[k] for k in HASHED_POETRY_KEYS if k in poetry}}
    return sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def locked_hash(poetry_lock: Path) -> str:
    """The content-hash recorded in ``poetry_lock``."""
    return tomllib.loads(poetry_lock.read_text())["metadata"]["content-hash"]


def test_poetry_lock_pins_what_requirements_lock_pins():
    assert disagreements(PROJECT_ROOT / "poetry.lock", PROJECT_ROOT / "requirements.lock") == []


def test_poetry_lock_is_fresh_for_pyproject():
    """What ``poetry check --lock`` checks: poetry.lock was locked from this pyproject.toml."""
    assert locked_hash(PROJECT_ROOT / "poetry.lock") == content_hash(
        PROJECT_ROOT / "pyproject.toml"
    )


def test_poetry_lock_covers_every_machine_once():
    """TensorFlow per machine (``tensorflow-cpu`` on x86-64), one version of each package."""
    lock = tomllib.loads((PROJECT_ROOT / "poetry.lock").read_text())
    names = [canonicalize_name(package["name"]) for package in lock["package"]]
    assert len(names) == len(set(names))
    assert {"tensorflow", "tensorflow-cpu"} <= set(names)
    assert "tensorflow" not in poetry_pins(PROJECT_ROOT / "poetry.lock")


def test_poetry_version_is_the_package_version():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["poetry"]["version"] == fruits_kedro.__version__


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """A folder with copies of pyproject.toml and both locks, to alter."""
    for name in ("pyproject.toml", "poetry.lock", "requirements.lock"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, pattern: str, replacement: str) -> None:
    text, count = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.MULTILINE)
    assert count == 1, pattern
    path.write_text(text)


def test_a_changed_pin_on_either_side_is_a_disagreement(copies: Path):
    poetry_lock, requirements_lock = copies / "poetry.lock", copies / "requirements.lock"
    _edit(poetry_lock, r'^(name = "kedro"\nversion = )"[^"]+"', r'\1"0.0.1"')
    kedro = requirements_pins(requirements_lock)["kedro"]
    assert disagreements(poetry_lock, requirements_lock) == [
        f"kedro: poetry.lock 0.0.1, requirements.lock {kedro}"
    ]
    _edit(requirements_lock, r"^numpy==.*$", "numpy==0.0.1")
    assert [d.split(":")[0] for d in disagreements(poetry_lock, requirements_lock)] == [
        "kedro",
        "numpy",
    ]


def test_a_pin_missing_from_one_lock_is_a_disagreement(copies: Path):
    poetry_lock, requirements_lock = copies / "poetry.lock", copies / "requirements.lock"
    _edit(requirements_lock, r"^pytest==.*\n", "")
    assert [d.split(",")[1] for d in disagreements(poetry_lock, requirements_lock)] == [
        " requirements.lock None"
    ]
    _edit(poetry_lock, r'^name = "ruff"$', 'name = "ruff-fork"')
    assert [d.split(":")[0] for d in disagreements(poetry_lock, requirements_lock)] == [
        "pytest",
        "ruff",
        "ruff-fork",
    ]


def test_a_changed_dependency_makes_poetry_lock_stale(copies: Path):
    assert locked_hash(copies / "poetry.lock") == content_hash(copies / "pyproject.toml")
    _edit(copies / "pyproject.toml", r'"pillow~=13.0"', '"pillow~=13.1"')
    assert locked_hash(copies / "poetry.lock") != content_hash(copies / "pyproject.toml")
