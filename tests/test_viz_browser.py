"""kedro-viz in headless Chromium: the stages are collapsible groups, and every registered
pipeline draws each of its nodes once they are expanded.

Needs Playwright (Python) and Debian's ``chromium``; skips without them, unless
``FRUITS_REQUIRE_BROWSER=1`` (CI), when it fails instead. ``FRUITS_UPDATE_DOCS=1`` also
refreshes ``docs/kedro-viz.png`` from the screenshot of ``__default__`` by stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import quote, urlsplit

import pytest
from kedro.framework.startup import bootstrap_project
from kedro_viz import __version__ as VIZ_VERSION

from tests.conftest import PROJECT_ROOT, copy_project

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # skipped, or failed under FRUITS_REQUIRE_BROWSER=1
    expect = sync_playwright = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Iterator

    from kedro.pipeline import Pipeline
    from playwright.sync_api import Page, Route

HOST = "127.0.0.1"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
VIEWPORT = {"width": 1600, "height": 1600}  # the graph is tall: its labels stay legible
# kedro-viz keeps its settings in localStorage: labels are the nodes' real names (not
# "Fit Pca"), the stages (namespaces, kedro-viz's modular pipelines) are collapsed or all
# expanded into their nodes, and no onboarding pop-up or minimap covers the graph.
VIZ_SETTINGS = {
    "isPrettyName": False,
    "expandAllPipelines": False,
    "showFeatureHints": False,
    "visible": {"miniMap": False},
}
EXPANDED = {**VIZ_SETTINGS, "expandAllPipelines": True}
STAGES = {"ingestion", "embedding", "reduction", "classification", "export"}
KINDS = ("task", "data", "modularPipeline")
# Run before each page load. The pipeline saved from the last page is set to the URL's: when
# they differ, kedro-viz may draw the saved one's graph under the URL's name in its selector.
SETTINGS_SCRIPT = """settings => {
  const saved = JSON.parse(localStorage.getItem("KedroViz") || "{}");
  const pid = new URLSearchParams(location.search).get("pid");
  const pipeline = pid ? {...saved.pipeline, active: pid} : saved.pipeline;
  localStorage.setItem("KedroViz", JSON.stringify({...saved, ...settings, pipeline}));
}"""
SERVER_START_TIMEOUT_S = 60  # kedro viz waits 600 s for a server process that died
STOP_TIMEOUT_S = 10
PIPELINE_SELECTOR = '[data-test="kedro-pipeline-selector"] .dropdown__label'
DOCS_SCREENSHOT = PROJECT_ROOT / "docs" / "kedro-viz.png"


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when ``FRUITS_REQUIRE_BROWSER=1``."""
    if os.environ.get("FRUITS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FRUITS_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A free loopback port below 49152: ``kedro viz run`` rejects higher ones."""
    for port in random.sample(range(20000, 32000), 50):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 20000-31999")


def server_environment() -> dict[str, str]:
    """Telemetry off; kedro-viz's PyPI version checks fail at once on a closed local proxy."""
    closed_proxy = f"http://{HOST}:9"
    return {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "HTTPS_PROXY": closed_proxy,
        "https_proxy": closed_proxy,
        "NO_PROXY": f"{HOST},localhost",
        "no_proxy": f"{HOST},localhost",
    }


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll ``url`` until it answers; fail with the server's output if it dies or times out."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"kedro viz exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(
        f"kedro viz did not answer within {SERVER_START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}"
    )


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the process's group, then SIGKILL whatever is left after a timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None and not _group_alive(process.pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT_S)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project for kedro-viz to load."""
    return copy_project(tmp_path_factory.mktemp("viz") / "project")


@contextlib.contextmanager
def viz_page(settings: dict[str, object]) -> Iterator[Page]:
    """A Chromium page that reaches only the loopback server, with kedro-viz's ``settings``."""
    if sync_playwright is None:
        _unavailable("Playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(f"({SETTINGS_SCRIPT})({json.dumps(settings)})")
            context.route(lambda url: urlsplit(url).hostname != HOST, lambda route: route.abort())
            context.route("**/api/version", _answer_version)
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture
def page() -> Iterator[Page]:
    """A page with every stage expanded into its nodes."""
    with viz_page(EXPANDED) as expanded:
        yield expanded


@pytest.fixture
def collapsed_page() -> Iterator[Page]:
    """A page with kedro-viz's default view: the stages collapsed."""
    with viz_page(VIZ_SETTINGS) as collapsed:
        yield collapsed


def _answer_version(route: Route) -> None:
    """Answer kedro-viz's version check as up to date: with PyPI unreachable, kedro-viz
    reports version "None" as new and shows an upgrade banner over the graph."""
    answer = {"installed": VIZ_VERSION, "is_outdated": False, "latest": VIZ_VERSION}
    route.fulfill(json=answer)


@pytest.fixture(scope="module")
def viz_url(project: Path) -> Iterator[str]:
    """``kedro viz run`` on a free loopback port in its own process group, shared by the
    module's tests; always stopped."""
    port = free_port()
    log = project.parent / "kedro-viz.log"
    command = [sys.executable, "-m", "kedro", "viz", "run", "--no-browser"]
    command += ["--host", HOST, "--port", str(port)]
    with log.open("w") as output:
        server = subprocess.Popen(
            command,
            cwd=project,
            env=server_environment(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://{HOST}:{port}/"
        wait_until_up(url, server, log)
        yield url
    finally:
        stop_process_group(server)


def registered_pipelines(project: Path) -> dict[str, Pipeline]:
    """The project's own pipelines, ``__default__`` included."""
    bootstrap_project(project)
    from fruits_kedro.pipeline_registry import register_pipelines

    return register_pipelines()


def drawn_datasets(pipeline: Pipeline) -> set[str]:
    """Parameters are hidden by default; a transcoded dataset is drawn once, without ``@...``."""
    return {
        name.split("@")[0]
        for name in pipeline.datasets()
        if name != "parameters" and not name.startswith("params:")
    }


def expected_names(pipeline: Pipeline) -> dict[str, set[str]]:
    """The labels kedro-viz draws for ``pipeline`` by node type, stages expanded, pretty names
    off: a node's label is its name within its stage."""
    tasks = {node.name.rpartition(".")[2] for node in pipeline.nodes}
    return {"task": tasks, "data": drawn_datasets(pipeline), "modularPipeline": set()}


def inside_one_stage(pipeline: Pipeline) -> dict[str, str]:
    """The datasets only one stage writes and reads, by name: a collapsed stage hides them."""
    stages: dict[str, set[str | None]] = {}
    for node in pipeline.nodes:
        for name in [*node.inputs, *node.outputs]:
            stages.setdefault(name, set()).add(node.namespace)
    consumed = {name for node in pipeline.nodes for name in node.inputs}
    produced = {name for node in pipeline.nodes for name in node.outputs}
    return {
        name: str(next(iter(found)))
        for name, found in stages.items()
        if len(found) == 1 and name in consumed & produced and None not in found
    }


def collapsed_names(pipeline: Pipeline, expanded: str | None = None) -> dict[str, set[str]]:
    """What kedro-viz draws by stage: the groups, the datasets between them, and the nodes
    and inner datasets of the ``expanded`` stage."""
    hidden = {n for n, stage in inside_one_stage(pipeline).items() if stage != expanded}
    tasks = {n.name.rpartition(".")[2] for n in pipeline.nodes if n.namespace == expanded}
    groups = {n.namespace for n in pipeline.nodes if n.namespace and n.namespace != expanded}
    data = drawn_datasets(pipeline) - hidden
    return {"task": tasks if expanded else set(), "data": data, "modularPipeline": groups}


def drawn_names(
    page: Page, expected: dict[str, set[str]], timeout_s: float = 10
) -> dict[str, set[str]]:
    """The labels of the flowchart's nodes by type, once they match ``expected`` or at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        drawn = {
            kind: set(
                page.locator(f".pipeline-node--{kind} .pipeline-node__text").all_text_contents()
            )
            for kind in KINDS
        }
        if drawn == expected or time.monotonic() > deadline:
            return drawn
        page.wait_for_timeout(200)


def wait_until_still(page: Page, timeout_s: float = 10) -> None:
    """Wait for the flowchart's zoom-to-fit transition to end (same transform for 0.75 s)."""
    wrapper = page.locator("#pipeline-graph #zoom-wrapper")
    deadline = time.monotonic() + timeout_s
    last, still_since = None, time.monotonic()
    while time.monotonic() < deadline:
        transform = wrapper.get_attribute("transform")
        if transform != last:
            last, still_since = transform, time.monotonic()
        elif time.monotonic() - still_since >= 0.75:
            return
        page.wait_for_timeout(100)


def save_screenshot(page: Page, tmp_path: Path) -> Path:
    """A full-page PNG in ``tmp_path``, copied to ``docs/`` when ``FRUITS_UPDATE_DOCS=1``."""
    wait_until_still(page)
    path = tmp_path / "kedro-viz.png"
    page.screenshot(path=path, full_page=True)
    if os.environ.get("FRUITS_UPDATE_DOCS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOT)
    return path


def test_the_default_view_shows_the_stages_and_one_expands_to_its_nodes(
    collapsed_page: Page, viz_url: str, project: Path, tmp_path: Path
) -> None:
    pipeline = registered_pipelines(project)["__default__"]
    assert {n.namespace for n in pipeline.nodes} == STAGES
    collapsed_page.goto(f"{viz_url}?pid=__default__")
    expect(collapsed_page.locator(PIPELINE_SELECTOR)).to_have_text("__default__", timeout=20_000)
    collapsed = collapsed_names(pipeline)
    assert collapsed["modularPipeline"] == STAGES
    assert collapsed["task"] == set()
    assert {"accuracy_vs_k", "pca_scatter_points"} & collapsed["data"] == set()

    drawn_collapsed = drawn_names(collapsed_page, collapsed)
    screenshot = save_screenshot(collapsed_page, tmp_path)  # the README's picture, by stage
    group = collapsed_page.locator(".pipeline-node--modularPipeline").filter(
        has_text=re.compile(r"^embedding$")
    )
    group.click()
    expanded = collapsed_names(pipeline, expanded="embedding")
    drawn_expanded = drawn_names(collapsed_page, expanded)

    assert drawn_collapsed == collapsed
    assert drawn_expanded == expanded
    assert expanded["task"] == {
        "load_model",
        "embed_images",
        "select_embeddings",
        "quarantine_images",
        "reconcile_counts",
    }
    assert expanded["modularPipeline"] == STAGES - {"embedding"}
    assert screenshot.stat().st_size > 10_000


def test_viz_shows_every_node_of_every_pipeline(page: Page, viz_url: str, project: Path) -> None:
    pipelines = registered_pipelines(project)
    assert "__default__" in pipelines
    mismatches: dict[str, dict[str, dict[str, list[str]]]] = {}
    for name in sorted(pipelines, key=lambda n: n == "__default__"):  # default last
        page.goto(f"{viz_url}?pid={quote(name)}")
        expect(page.locator(PIPELINE_SELECTOR)).to_have_text(name, timeout=20_000)
        expected = expected_names(pipelines[name])
        drawn = drawn_names(page, expected)
        if drawn != expected:
            problems = {
                "missing": _difference(expected, drawn),
                "unexpected": _difference(drawn, expected),
            }
            mismatches[name] = {problem: names for problem, names in problems.items() if names}
    assert not mismatches, "flowchart differs from the registered pipelines:\n" + json.dumps(
        mismatches, indent=2, sort_keys=True
    )


def _difference(left: dict[str, set[str]], right: dict[str, set[str]]) -> dict[str, list[str]]:
    """The names of ``left`` not in ``right``, by node type."""
    return {kind: sorted(left[kind] - right[kind]) for kind in left if left[kind] - right[kind]}
