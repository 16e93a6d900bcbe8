"""Packaging for a cluster: the pinned runtime, and a wheel of it for both EMR architectures."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from fruits_kedro.deploy.package import (
    DRIVER_ONLY,
    for_machine,
    runtime_closure,
    runtime_requirements,
)
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
