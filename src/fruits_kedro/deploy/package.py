"""Build what a cluster needs, into one folder (default ``dist/``)::

    python -m fruits_kedro.deploy.package [--project-dir .] [--dist dist]

- ``fruits_kedro-<version>-py3-none-any.whl`` and ``conf-fruits_kedro.tar.gz`` (``kedro package``);
- ``spark_entrypoint.py``, the script ``spark-submit`` runs;
- ``bootstrap.sh``, the EMR bootstrap action that installs the runtime on every node;
- ``requirements-runtime.txt``, the pinned runtime dependencies for x86-64 and aarch64;
- ``requirements-executor.txt``, the same less TensorFlow and Keras: an executor only runs
  the TFLite model the driver converted (``bootstrap.sh`` with ``FRUITS_ROLE=executor``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

logger = logging.getLogger(__name__)

PACKAGE = "fruits_kedro"
SCRIPTS = ("spark_entrypoint.py", "bootstrap.sh")
REQUIREMENTS = "requirements-runtime.txt"
EXECUTOR_REQUIREMENTS = "requirements-executor.txt"
# Only the driver converts the weights (TensorFlow, Keras); executors run the TFLite flatbuffer.
DRIVER_ONLY = frozenset({"tensorflow-cpu", "tensorflow", "keras"})
# TensorFlow's CPU-only wheel exists for x86-64 only; Graviton (aarch64) takes `tensorflow`.
ARCH_VARIANTS = {"tensorflow-cpu": ("tensorflow", 'platform_machine == "aarch64"')}
ARCH_MARKER = 'platform_machine == "x86_64"'
# EMR's Spark brings its own PySpark and Py4J (the same Spark 4.1.1); installing them again
# would shadow the cluster's.
PROVIDED_BY_EMR = frozenset({"pyspark", "py4j"})


def runtime_closure(root: str = PACKAGE, skip: frozenset[str] = frozenset()) -> set[str]:
    """Canonical names of every distribution ``root`` needs at run time (no extras of its own),
    not following the distributions named in ``skip``."""
    found: set[str] = set()
    pending: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while pending:
        name, extras = pending.pop()
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": e}) for e in extras or {""}):
                continue
            key = str(canonicalize_name(requirement.name))
            if key in skip:
                continue
            if key not in found or requirement.extras:
                found.add(key)
                pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def runtime_requirements(lock: Path, skip: frozenset[str] = frozenset()) -> list[str]:
    """The runtime closure pinned from ``lock`` (less what EMR provides and what ``skip``
    names), TensorFlow per machine."""
    pins: dict[str, str] = {
        str(canonicalize_name(line.split("==")[0])): line.strip()
        for line in lock.read_text().splitlines()
        if "==" in line
    }
    lines = []
    for name in sorted(runtime_closure(skip=skip) - PROVIDED_BY_EMR):
        if name not in pins:
            raise ValueError(f"{name} is a runtime dependency but has no pin in {lock}")
        pin = pins[name]
        if name in ARCH_VARIANTS:
            variant, marker = ARCH_VARIANTS[name]
            lines += [f"{pin} ; {ARCH_MARKER}", f"{variant}=={pin.split('==')[1]} ; {marker}"]
        else:
            lines.append(pin)
    return lines


def for_machine(lines: list[str], machine: str) -> list[str]:
    """The requirement lines that apply on ``machine`` (``x86_64`` or ``aarch64``), markers dropped."""
    chosen = []
    for line in lines:
        pin, _, marker = line.partition(";")
        if not marker or Marker(marker).evaluate({"platform_machine": machine}):
            chosen.append(pin.strip())
    return chosen


def build(project_dir: Path, dist: Path) -> list[Path]:
    """Build every artifact into ``dist``; returns their paths."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    subprocess.run([sys.executable, "-m", "kedro", "package"], cwd=project_dir, env=env, check=True)
    dist.mkdir(parents=True, exist_ok=True)
    built = project_dir / "dist"
    if built.resolve() != dist.resolve():
        for artifact in built.iterdir():
            shutil.copy(artifact, dist / artifact.name)
    for script in SCRIPTS:
        source = resources.files("fruits_kedro.deploy") / script
        (dist / script).write_bytes(source.read_bytes())
    lock = project_dir / "requirements.lock"
    for name, skip in ((REQUIREMENTS, frozenset()), (EXECUTOR_REQUIREMENTS, DRIVER_ONLY)):
        (dist / name).write_text("\n".join(runtime_requirements(lock, skip)) + "\n")
    artifacts = sorted(dist.iterdir())
    logger.info("built %s", ", ".join(a.name for a in artifacts))
    return artifacts


def main(argv: list[str] | None = None) -> int:
    """Command line: build the artifacts."""
    parser = argparse.ArgumentParser(prog="python -m fruits_kedro.deploy.package")
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    build(args.project_dir.resolve(), args.dist.resolve())
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    raise SystemExit(main())
