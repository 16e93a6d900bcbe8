"""Packaging for a cluster: the pinned runtime, a wheel of it for both EMR architectures, and the
wheelhouses and model that ``make package`` adds."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from fruits_kedro.deploy import package
from fruits_kedro.deploy.package import (
    DRIVER_ONLY,
    for_machine,
    runtime_closure,
    runtime_requirements,
)
from fruits_kedro.deploy.wheelhouse import WheelhouseError
from tests.conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

LOCK = PROJECT_ROOT / "requirements.lock"
MACHINES = ("x86_64", "aarch64")


def test_runtime_closure_has_what_runs_and_nothing_of_the_tests():
    closure = runtime_closure()
    assert {
        "pyspark",
        "kedro",
        "kedro-datasets",
        "ai-edge-litert",
        "pillow",
        "s3fs",
        "numpy",
    } <= closure
    assert not {"pytest", "moto", "ruff", "cfn-lint", "kedro-viz"} & closure


def test_requirements_pin_tensorflow_per_architecture():
    lines = runtime_requirements(LOCK)
    assert "kedro==1.7.0" in lines
    assert not any(line.startswith(("pyspark", "py4j")) for line in lines)  # EMR's own
    x86, arm = for_machine(lines, "x86_64"), for_machine(lines, "aarch64")
    assert [line for line in x86 if line.startswith("tensorflow")] == ["tensorflow_cpu==2.21.0"]
    assert [line for line in arm if line.startswith("tensorflow")] == ["tensorflow==2.21.0"]
    assert all("==" in line for line in x86 + arm)


def test_executors_get_the_runtime_without_tensorflow():
    """Only the driver converts the weights; executors run the TFLite model."""
    executor = runtime_requirements(LOCK, DRIVER_ONLY)
    names = {line.split("==")[0].lower() for line in executor}
    assert not {"tensorflow", "tensorflow_cpu", "keras", "h5py", "grpcio"} & names
    assert {"ai-edge-litert", "numpy", "pandas", "pyarrow", "pillow", "kedro"} <= names
    assert set(executor) < set(runtime_requirements(LOCK))


@pytest.mark.parametrize("machine", MACHINES)
def test_every_runtime_dependency_has_a_python_311_wheel(machine: str, tmp_path: Path):
    """pip resolves each pin to a manylinux wheel of ``machine`` (metadata only, nothing built)."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(for_machine(runtime_requirements(LOCK), machine)) + "\n")
    platforms = [f"manylinux_2_{v}_{machine}" for v in (17, 27, 28)] + [f"manylinux2014_{machine}"]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--target",
        str(tmp_path / "target"),
        "-r",
        str(requirements),
    ]
    for platform in platforms:
        command += ["--platform", platform]

    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    assert result.returncode == 0, result.stderr[-2000:]


def test_wheelhouses_are_built_of_the_executor_pins_and_stale_ones_removed(tmp_path, monkeypatch):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "wheelhouse-x86_64.tar").write_bytes(b"an earlier build")
    (dist / "fruits_kedro-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    built: list[tuple] = []

    def fake_build(pins, machine, cache, folder, name, *, roots, external):
        built.append((machine, pins, cache, name, roots, external))
        (folder / f"wheelhouse-{machine}.tar").write_bytes(b"wheels")

    monkeypatch.setattr(package.wheelhouse, "build", fake_build)

    package.build_wheelhouses(LOCK, dist, ["aarch64", "aarch64"], tmp_path / "cache")

    assert sorted(p.name for p in dist.glob("wheelhouse-*")) == ["wheelhouse-aarch64.tar"]
    ((machine, pins, cache, name, roots, external),) = built
    assert (machine, cache, name) == ("aarch64", tmp_path / "cache", "requirements-executor.txt")
    assert pins == for_machine(runtime_requirements(LOCK, DRIVER_ONLY), "aarch64")
    assert roots == [dist / "fruits_kedro-0.1.0-py3-none-any.whl"]
    assert {"pyspark", "py4j", "tensorflow", "keras"} <= external


@pytest.mark.parametrize(
    ("argv", "machines", "weights"),
    [
        ([], ("aarch64",), "imagenet"),
        (
            ["--machine", "x86_64", "--machine", "aarch64", "--weights", "w.h5"],
            ["x86_64", "aarch64"],
            "w.h5",
        ),
        (["--no-wheelhouse", "--no-model"], (), None),
    ],
)
def test_package_command_line(argv, machines, weights, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(package, "build", lambda *args, **kwargs: calls.append(kwargs))

    assert package.main(["--dist", str(tmp_path), *argv]) == 0

    assert calls[0]["machines"] == machines and calls[0]["weights"] == weights
    assert calls[0]["input_size"] == 224


def test_package_command_fails_when_a_pin_has_no_wheel(tmp_path, monkeypatch, caplog):
    def no_wheel(*args, **kwargs):
        raise WheelhouseError("no CPython 3.11 wheel for aarch64 of pkg==1.0")

    monkeypatch.setattr(package, "build", no_wheel)

    assert package.main(["--dist", str(tmp_path)]) == 1
    assert "aarch64 of pkg==1.0" in caplog.text
