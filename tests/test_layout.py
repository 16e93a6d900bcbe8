"""The package's layout is its architecture: no import circle, and every folder documented."""

from __future__ import annotations

import ast
import graphlib
import re
from typing import TYPE_CHECKING

from tests.conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

PACKAGE = PROJECT_ROOT / "src" / "fruits_kedro"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The project's modules that ``name`` imports anywhere (type-checking blocks included)."""
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of ``package`` and the package's modules it imports."""
    files = {module_name(path, package): path for path in package.rglob("*.py")}
    modules = set(files)
    return {
        name: imported(ast.parse(path.read_text()), name, path.stem == "__init__", modules)
        for name, path in files.items()
    }


def circle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph``, or none."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    assert "fruits_kedro.deploy.aws" in graph["fruits_kedro.deploy.stack"]
    assert circle(graph) == []


def test_a_circle_through_a_type_checking_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n"
    )
    (package / "sub" / "c.py").write_text("def f():\n    from pkg.sub.a import x\n")

    assert set(circle(import_graph(package))) == {"pkg.sub.a", "pkg.sub.b", "pkg.sub.c"}


def test_the_readme_table_names_every_folder_of_the_package():
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(?:src/fruits_kedro/)?([a-z_]+)/` ", section, re.MULTILINE))
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= listed, f"missing from the README's table: {sorted(folders - listed)}"


def test_every_folder_of_modules_is_a_package_the_wheel_ships():
    folders = {path.parent for path in PACKAGE.rglob("*.py")}
    assert [f for f in folders if not (f / "__init__.py").is_file()] == []
