"""A wheelhouse: every pinned runtime dependency as a wheel of one machine, for nodes offline.

EMR nodes in a private subnet reach S3 (through the VPC's gateway endpoint) but not PyPI. The
wheels of ``x86_64`` or ``aarch64`` (Graviton), CPython 3.11, manylinux, are fetched where the
project is packaged and shipped as one archive, ``wheelhouse-<machine>.tar``::

    wheelhouse-<machine>/requirements-executor.txt   each pin with the sha256 of its wheel
    wheelhouse-<machine>/*.whl

``bootstrap.sh`` installs from it with ``pip install --no-index --require-hashes --no-deps``:
the pins are the whole closure, checked here against the metadata of every wheel (markers
evaluated for the node, not for this machine); what the node already has (EMR's PySpark) is not
installed again, even where a wheel asks for it. Wheels are kept in a local cache between
builds: a pin already there is not fetched again, so a build whose pins have not changed needs
no network.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

MACHINES = ("aarch64", "x86_64")
PYTHON = (3, 11)
# manylinux_2_17 (= manylinux2014) up to glibc 2.34, the glibc of Amazon Linux 2023 (EMR 7 and
# later): the newest wheels a node can load.
GLIBC_MINORS = range(34, 16, -1)


class WheelhouseError(RuntimeError):
    """A pin has no wheel for the machine, or the wheelhouse does not install."""


@dataclass(frozen=True)
class Wheelhouse:
    """A built ``wheelhouse-<machine>.tar``: its path, wheels and size."""

    machine: str
    archive: Path
    wheels: int
    size_bytes: int


def folder_name(machine: str) -> str:
    """``wheelhouse-<machine>``: the archive's stem and its top folder."""
    return f"wheelhouse-{machine}"


def platforms(machine: str) -> list[str]:
    """The platform tags a node of ``machine`` loads, the newest first."""
    if machine not in MACHINES:
        raise ValueError(f"unknown machine {machine!r}: expected one of {list(MACHINES)}")
    return [f"manylinux_2_{minor}_{machine}" for minor in GLIBC_MINORS] + [
        f"manylinux2014_{machine}"
    ]


def supported_tags(machine: str) -> list[tags.Tag]:
    """The wheel tags CPython 3.11 on ``machine`` accepts, the preferred first."""
    names = platforms(machine)
    return [
        *tags.cpython_tags(python_version=PYTHON, abis=["cp311"], platforms=names),
        *tags.compatible_tags(python_version=PYTHON, interpreter="cp311", platforms=names),
    ]


def pip_target_options(machine: str) -> list[str]:
    """pip's options that pick wheels for ``machine`` rather than for this interpreter."""
    options = ["--only-binary=:all:", "--implementation", "cp", "--abi", "cp311"]
    options += ["--python-version", ".".join(map(str, PYTHON))]
    for platform in platforms(machine):
        options += ["--platform", platform]
    return options


def _pin(line: str) -> tuple[str, Version]:
    name, _, version = line.partition("==")
    if not version:
        raise ValueError(f"not an exact pin (name==version): {line!r}")
    return str(canonicalize_name(name.strip())), Version(version.strip())


def find_wheel(pin: str, folder: Path, machine: str) -> Path | None:
    """The wheel of ``pin`` in ``folder`` that ``machine`` prefers, if there is one."""
    name, version = _pin(pin)
    rank = {tag: i for i, tag in reversed(list(enumerate(supported_tags(machine))))}
    best: tuple[int, Path] | None = None
    for path in folder.glob("*.whl"):
        wheel_name, wheel_version, _, wheel_tags = parse_wheel_filename(path.name)
        if wheel_name != name or wheel_version != version:
            continue
        score = min((rank[tag] for tag in wheel_tags if tag in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, path)
    return best[1] if best else None


def download(pins: list[str], machine: str, cache: Path) -> dict[str, Path]:
    """The wheel of every pin for ``machine``, fetched into ``cache`` unless already there.

    Raises:
        WheelhouseError: pip failed, or a pin has no wheel for ``machine``.
    """
    cache.mkdir(parents=True, exist_ok=True)
    missing = [pin for pin in pins if find_wheel(pin, cache, machine) is None]
    if missing:
        logger.info("fetching %d wheels for %s into %s", len(missing), machine, cache)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
            requirements.write("\n".join(missing) + "\n")
            requirements.flush()
            options = ["--no-deps", *pip_target_options(machine), "--dest", str(cache)]
            _pip(
                "download",
                *options,
                "--requirement",
                requirements.name,
                what=f"the {machine} wheels of {missing}",
            )
    wheels = {pin: find_wheel(pin, cache, machine) for pin in pins}
    lacking = sorted(pin for pin, wheel in wheels.items() if wheel is None)
    if lacking:
        raise WheelhouseError(f"no CPython 3.11 wheel for {machine} of {', '.join(lacking)}")
    return {pin: wheel for pin, wheel in wheels.items() if wheel is not None}


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hashed_requirements(wheels: dict[str, Path]) -> list[str]:
    """``name==version --hash=sha256:...`` for each pin: what ``--require-hashes`` checks."""
    return [f"{pin} --hash=sha256:{sha256(wheel)}" for pin, wheel in wheels.items()]


def requirements_of(wheel: Path) -> list[Requirement]:
    """The ``Requires-Dist`` of a wheel, from its ``METADATA``."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(
            n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        )
        metadata = HeaderParser().parsestr(archive.read(name).decode())
    return [Requirement(text) for text in metadata.get_all("Requires-Dist") or []]


def node_environment(machine: str) -> dict[str, str]:
    """The marker variables of CPython 3.11 on a Linux node of ``machine``."""
    return {
        "platform_machine": machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "python_version": ".".join(map(str, PYTHON)),
        "python_full_version": ".".join(map(str, PYTHON)) + ".0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def unmet_dependencies(
    wheels: dict[str, Path],
    machine: str,
    *,
    roots: Iterable[Path] = (),
    external: frozenset[str] = frozenset(),
) -> list[str]:
    """What the wheels of the pins (and the ``roots`` wheels) need on ``machine`` that no pin
    gives, extras followed; names in ``external`` are the node's own or installed elsewhere."""
    pinned = {_pin(pin)[0]: (_pin(pin)[1], wheel) for pin, wheel in wheels.items()}
    pending = [(wheel, frozenset({""})) for wheel in [*wheels.values(), *roots]]
    seen: set[tuple[str, frozenset[str]]] = set()
    unmet: list[str] = []
    environment = node_environment(machine)
    while pending:
        wheel, extras = pending.pop()
        for requirement in requirements_of(wheel):
            marker = requirement.marker
            if marker and not any(marker.evaluate({**environment, "extra": e}) for e in extras):
                continue
            key = str(canonicalize_name(requirement.name))
            if key in external:
                continue
            if key not in pinned:
                unmet.append(f"{wheel.name} needs {requirement}: not pinned")
                continue
            version, dependency = pinned[key]
            if not requirement.specifier.contains(version, prereleases=True):
                unmet.append(f"{wheel.name} needs {requirement}: {key}=={version} pinned")
            if requirement.extras and (key, frozenset(requirement.extras)) not in seen:
                seen.add((key, frozenset(requirement.extras)))
                pending.append((dependency, frozenset(requirement.extras)))
    return sorted(set(unmet))


def verify(folder: Path, requirements: Path, machine: str) -> None:
    """Install ``requirements`` from ``folder`` alone as a node of ``machine`` will, hashes
    checked (a dry run: nothing is installed).

    Raises:
        WheelhouseError: A pin has no wheel in ``folder``, or a hash differs.
    """
    with tempfile.TemporaryDirectory() as target:
        offline = ["--dry-run", "--no-index", "--find-links", str(folder), "--require-hashes"]
        options = [*offline, "--no-deps", *pip_target_options(machine), "--target", target]
        what = f"{requirements.name} from {folder.name} alone, with hashes"
        _pip("install", *options, "--requirement", str(requirements), what=what)


def _pip(*args: str, what: str) -> None:
    command = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise WheelhouseError(f"pip failed on {what}:\n{result.stderr[-3000:]}")


def write_archive(archive: Path, top: str, files: Iterable[tuple[str, Path]]) -> None:
    """An uncompressed tar (wheels are compressed already) of ``files`` under ``top/``; the
    same files give the same bytes."""
    part = archive.with_name(archive.name + ".part")
    with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(files):
            info = tar.gettarinfo(str(path), arcname=f"{top}/{name}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with path.open("rb") as stream:
                tar.addfile(info, stream)
    part.replace(archive)


def build(
    pins: list[str],
    machine: str,
    cache: Path,
    dist: Path,
    requirements_name: str,
    *,
    roots: Iterable[Path] = (),
    external: frozenset[str] = frozenset(),
) -> Wheelhouse:
    """``dist/wheelhouse-<machine>.tar``: the wheels of ``pins`` and ``requirements_name``
    listing them with their hashes, checked to be complete (see :func:`unmet_dependencies`)
    and to install offline.

    Raises:
        WheelhouseError: A pin has no wheel for ``machine``, or a dependency no pin.
    """
    wheels = download(pins, machine, cache / machine)
    unmet = unmet_dependencies(wheels, machine, roots=roots, external=external)
    if unmet:
        raise WheelhouseError(f"the {machine} wheelhouse is incomplete:\n" + "\n".join(unmet))
    top = folder_name(machine)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / requirements_name
        requirements.write_text("\n".join(hashed_requirements(wheels)) + "\n")
        staged = Path(tmp) / top
        staged.mkdir()
        for wheel in wheels.values():
            (staged / wheel.name).symlink_to(wheel)
        verify(staged, requirements, machine)
        archive = dist / f"{top}.tar"
        files = [(w.name, w) for w in wheels.values()] + [(requirements_name, requirements)]
        write_archive(archive, top, files)
    built = Wheelhouse(machine, archive, len(wheels), archive.stat().st_size)
    logger.info("%s: %d wheels, %.1f MB", archive.name, built.wheels, built.size_bytes / 1e6)
    return built
