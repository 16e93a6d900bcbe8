"""Build what a cluster needs, into one folder (default ``dist/``)::

    python -m fruits_kedro.deploy.package [--project-dir .] [--dist dist]
        [--machine aarch64] [--machine x86_64] [--weights imagenet|FILE] [--input-size 224]

- ``fruits_kedro-<version>-py3-none-any.whl`` and ``conf-fruits_kedro.tar.gz`` (``kedro package``);
- ``spark_entrypoint.py``, the script ``spark-submit`` runs;
- ``bootstrap.sh``, the EMR bootstrap action that installs the runtime on every node;
- ``requirements-runtime.txt``, the pinned runtime dependencies for x86-64 and aarch64;
- ``requirements-executor.txt``, the same less TensorFlow and Keras: what a cluster node runs
  (the TFLite model, converted here); ``bootstrap.sh``'s default;
- ``wheelhouse-<machine>.tar`` per ``--machine`` (default: ``aarch64``, Graviton): the wheels of
  ``requirements-executor.txt`` with their hashes, so that a node installs without internet;
- ``mobilenet_v2_<size>.tflite`` and ``.json``: the model converted from ``--weights``.
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
from typing import TYPE_CHECKING

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fruits_kedro.deploy import converted_model, wheelhouse

if TYPE_CHECKING:
    from collections.abc import Iterable

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
DEFAULT_MACHINES = ("aarch64",)  # Graviton: the EMR fleets of conf/emr/cluster.yml
WHEEL_CACHE = Path("build") / "wheelhouse"  # under the project: wheels kept between builds
MODEL_CACHE = "~/.cache/fruits-kedro"  # the model cache of local runs (parameters_embedding.yml)


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


def build(
    project_dir: Path,
    dist: Path,
    *,
    machines: Iterable[str] = (),
    weights: str | None = None,
    input_size: int = 224,
    wheel_cache: Path | None = None,
    model_cache: str | None = MODEL_CACHE,
) -> list[Path]:
    """Build every artifact into ``dist``, a wheelhouse per machine of ``machines`` and the
    TFLite model of ``weights`` if given; returns their paths."""
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
    build_wheelhouses(lock, dist, machines, wheel_cache or project_dir / WHEEL_CACHE)
    if weights is not None:
        converted_model.write(weights, input_size, dist, model_cache)
    artifacts = sorted(dist.iterdir())
    logger.info("built %s", ", ".join(a.name for a in artifacts))
    return artifacts


def build_wheelhouses(
    lock: Path, dist: Path, machines: Iterable[str], cache: Path
) -> list[wheelhouse.Wheelhouse]:
    """``wheelhouse-<machine>.tar`` of the executor requirements for each of ``machines``; the
    archives of other machines left by an earlier build are removed (they would be uploaded)."""
    machines = list(dict.fromkeys(machines))
    for stale in dist.glob(f"{wheelhouse.folder_name('*')}.tar"):
        if stale.name not in {f"{wheelhouse.folder_name(m)}.tar" for m in machines}:
            stale.unlink()
    lines = runtime_requirements(lock, DRIVER_ONLY)
    roots = sorted(dist.glob(f"{PACKAGE}-*.whl"))
    external = PROVIDED_BY_EMR | DRIVER_ONLY
    return [
        wheelhouse.build(
            for_machine(lines, m),
            m,
            cache,
            dist,
            EXECUTOR_REQUIREMENTS,
            roots=roots,
            external=external,
        )
        for m in machines
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line: build the artifacts."""
    parser = argparse.ArgumentParser(prog="python -m fruits_kedro.deploy.package")
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument(
        "--machine",
        action="append",
        choices=wheelhouse.MACHINES,
        help=f"a wheelhouse for this machine; repeatable (default: {' '.join(DEFAULT_MACHINES)})",
    )
    parser.add_argument("--no-wheelhouse", action="store_true", help="nodes install from PyPI")
    parser.add_argument(
        "--weights", default="imagenet", help="converted to TFLite: imagenet or a .h5 file"
    )
    parser.add_argument("--no-model", action="store_true", help="no converted model")
    parser.add_argument("--input-size", type=int, default=224, help="side of the model input")
    parser.add_argument(
        "--wheel-cache", type=Path, help=f"wheels kept between builds (default: {WHEEL_CACHE})"
    )
    parser.add_argument("--model-cache", default=MODEL_CACHE, help="converted models kept")
    args = parser.parse_args(argv)
    machines = () if args.no_wheelhouse else (args.machine or DEFAULT_MACHINES)
    try:
        build(
            args.project_dir.resolve(),
            args.dist.resolve(),
            machines=machines,
            weights=None if args.no_model else args.weights,
            input_size=args.input_size,
            wheel_cache=args.wheel_cache,
            model_cache=args.model_cache,
        )
    except wheelhouse.WheelhouseError as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    raise SystemExit(main())
