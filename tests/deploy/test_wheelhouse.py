"""The wheelhouse: the right wheel per pin and machine, hashes, an archive that installs offline.

Wheels are made in the test (a few bytes of metadata each) and put in the cache, so nothing is
fetched: pip only resolves them from the folder, ``--no-index``.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from typing import TYPE_CHECKING

import pytest

from fruits_kedro.deploy import wheelhouse
from fruits_kedro.deploy.wheelhouse import WheelhouseError

if TYPE_CHECKING:
    from pathlib import Path

REQUIREMENTS = "requirements-executor.txt"


def make_wheel(folder: Path, name: str, version: str, tag: str, requires: tuple[str, ...] = ()):
    """A minimal valid wheel of ``name`` (an empty package) that depends on ``requires``."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    metadata = "".join(
        [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
        + [f"Requires-Dist: {r}\n" for r in requires]
    )
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(f"{info}/WHEEL", wheel_meta)
        archive.writestr(f"{info}/RECORD", "")
    return path


def test_platforms_reach_from_manylinux2014_to_the_glibc_of_amazon_linux_2023():
    tags = wheelhouse.platforms("aarch64")
    assert tags[0] == "manylinux_2_34_aarch64"
    assert {"manylinux_2_17_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64"} <= set(
        tags
    )
    assert not any("x86_64" in tag for tag in tags)
    with pytest.raises(ValueError, match="arm64"):
        wheelhouse.platforms("arm64")


def test_find_wheel_takes_the_pin_for_the_machine_only(tmp_path):
    for tag in (
        "cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64",
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp312-cp312-manylinux_2_28_aarch64",
        "cp311-cp311-musllinux_1_2_aarch64",
    ):
        make_wheel(tmp_path, "numpy", "2.4.6", tag)
    make_wheel(tmp_path, "numpy", "2.4.5", "cp311-cp311-manylinux_2_17_aarch64")
    make_wheel(tmp_path, "typing_extensions", "4.16.0", "py3-none-any")

    arm = wheelhouse.find_wheel("numpy==2.4.6", tmp_path, "aarch64")
    x86 = wheelhouse.find_wheel("numpy==2.4.6", tmp_path, "x86_64")
    pure = wheelhouse.find_wheel("typing-extensions==4.16.0", tmp_path, "aarch64")

    assert arm is not None and arm.name.endswith("manylinux_2_28_aarch64.whl")
    assert x86 is not None and x86.name.endswith("manylinux2014_x86_64.whl")
    assert pure is not None and pure.name == "typing_extensions-4.16.0-py3-none-any.whl"
    assert wheelhouse.find_wheel("numpy==2.4.7", tmp_path, "aarch64") is None
    with pytest.raises(ValueError, match="exact pin"):
        wheelhouse.find_wheel("numpy>=2", tmp_path, "aarch64")


def test_a_pin_without_a_wheel_for_the_machine_is_named(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    make_wheel(cache, "pkg", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
    fetched: list[tuple[str, ...]] = []
    monkeypatch.setattr(wheelhouse, "_pip", lambda *args, what: fetched.append(args))

    with pytest.raises(WheelhouseError, match=r"aarch64 of pkg==1\.0"):
        wheelhouse.download(["pkg==1.0"], "aarch64", cache)

    assert fetched and fetched[0][0] == "download"
    assert "manylinux_2_28_aarch64" in fetched[0]


def test_build_archives_hashed_pins_from_the_cache_without_fetching(tmp_path, monkeypatch):
    cache, dist = tmp_path / "cache", tmp_path / "dist"
    dist.mkdir()
    app = make_wheel(cache / "x86_64", "app", "1.0", "py3-none-any", ("dep==2.0",))
    dep = make_wheel(cache / "x86_64", "dep", "2.0", "py3-none-any")
    calls = _record_pip(monkeypatch)

    built = wheelhouse.build(["app==1.0", "dep==2.0"], "x86_64", cache, dist, REQUIREMENTS)
    first = built.archive.read_bytes()
    again = wheelhouse.build(["app==1.0", "dep==2.0"], "x86_64", cache, dist, REQUIREMENTS)

    assert built.archive == dist / "wheelhouse-x86_64.tar" and built.wheels == 2
    assert [call[0] for call in calls] == ["install", "install"]  # verified, never downloaded
    assert again.archive.read_bytes() == first  # same wheels, same bytes
    with tarfile.open(built.archive) as tar:
        names = sorted(tar.getnames())
        pinned = tar.extractfile(f"wheelhouse-x86_64/{REQUIREMENTS}").read().decode()  # type: ignore[union-attr]
    assert names == [f"wheelhouse-x86_64/{n}" for n in sorted([app.name, dep.name, REQUIREMENTS])]
    assert pinned.splitlines() == [
        f"app==1.0 --hash=sha256:{hashlib.sha256(app.read_bytes()).hexdigest()}",
        f"dep==2.0 --hash=sha256:{hashlib.sha256(dep.read_bytes()).hexdigest()}",
    ]


def test_a_wheelhouse_missing_a_dependency_is_refused(tmp_path):
    """``app`` needs ``dep``, which is not pinned: said, and nothing is written."""
    cache, dist = tmp_path / "cache", tmp_path / "dist"
    dist.mkdir()
    make_wheel(cache / "x86_64", "app", "1.0", "py3-none-any", ("dep==2.0",))

    with pytest.raises(WheelhouseError, match=r"app-1\.0-py3-none-any\.whl needs dep==2\.0"):
        wheelhouse.build(["app==1.0"], "x86_64", cache, dist, REQUIREMENTS)

    assert not list(dist.iterdir())


def test_dependencies_are_those_of_the_node_extras_followed(tmp_path):
    """Markers are evaluated for the node's machine, not this one's; the node's own PySpark and
    the driver-only TensorFlow are left out."""
    app = make_wheel(
        tmp_path,
        "app",
        "1.0",
        "py3-none-any",
        (
            "lib[fast]>=2",
            'armonly==1.0; platform_machine == "aarch64"',
            'winonly==1.0; sys_platform == "win32"',
            "pyspark==4.1.1",
            "testing==1.0; extra == 'test'",
        ),
    )
    lib = make_wheel(
        tmp_path, "lib", "2.0", "py3-none-any", ("speedup<1; extra == 'fast'", "old<1")
    )
    root = make_wheel(tmp_path, "fruits_kedro", "0.1.0", "py3-none-any", ("tensorflow==2.21",))
    wheels = {"app==1.0": app, "lib==2.0": lib, "old==0.5": lib}

    arm = wheelhouse.unmet_dependencies(
        wheels, "aarch64", roots=[root], external=frozenset({"pyspark"})
    )
    x86 = wheelhouse.unmet_dependencies(
        wheels, "x86_64", roots=[root], external=frozenset({"pyspark", "tensorflow"})
    )

    assert arm == [
        'app-1.0-py3-none-any.whl needs armonly==1.0; platform_machine == "aarch64": not pinned',
        "fruits_kedro-0.1.0-py3-none-any.whl needs tensorflow==2.21: not pinned",
        'lib-2.0-py3-none-any.whl needs speedup<1; extra == "fast": not pinned',
    ]
    assert x86 == ['lib-2.0-py3-none-any.whl needs speedup<1; extra == "fast": not pinned']
    wheels["old==1.5"] = wheels.pop("old==0.5")
    assert "lib-2.0-py3-none-any.whl needs old<1: old==1.5 pinned" in (
        wheelhouse.unmet_dependencies(wheels, "x86_64", external=frozenset({"pyspark"}))
    )


def _record_pip(monkeypatch) -> list[tuple[str, ...]]:
    """The arguments of every pip call, which still runs."""
    calls: list[tuple[str, ...]] = []
    run = wheelhouse._pip

    def recorded(*args: str, what: str) -> None:
        calls.append(args)
        run(*args, what=what)

    monkeypatch.setattr(wheelhouse, "_pip", recorded)
    return calls
