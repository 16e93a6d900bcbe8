"""The walkthrough notebook: executed headless against a finished mini run, committed clean."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from tests.conftest import MiniRun

pytestmark = [pytest.mark.shared, pytest.mark.e2e]

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"
CELL_TIMEOUT_S = 600
LEAK_WAIT_S = 30
RUN_MARKER = "FRUITS_NOTEBOOK_TEST_RUN"  # in the kernel's environment, inherited by its JVM
PLOT_CELLS = ("pca-variance", "pca-scatter", "accuracy-vs-k", "confusion-matrix")
INTERPRETER_PROBE = "import sys\nprint(sys.executable)"


def processes_with(marker: str) -> dict[int, str]:
    """Running processes whose environment holds ``marker``: pid -> command line (a zombie,
    already dead, has an empty environment; an init that does not reap leaves some)."""
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                command = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(environ.parent.name)] = command.decode(errors="replace")[:200]
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def kernel_manager(kernels: Path) -> AsyncKernelManager:
    """The ``python3`` kernel of this very interpreter, whatever kernel specs are installed
    (a user-level or ``$JUPYTER_PATH`` ``python3`` spec may point at another Python)."""
    write_kernel_spec(kernels / "python3")
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def outputs_of(notebook: NotebookNode, cell_id: str) -> list[NotebookNode]:
    """The outputs of the code cell with id ``cell_id``."""
    return next(cell.outputs for cell in notebook.cells if cell.get("id") == cell_id)


def stdout_of(notebook: NotebookNode, cell_id: str) -> str:
    """Everything the cell printed on stdout."""
    return "".join(o.text for o in outputs_of(notebook, cell_id) if o.get("name") == "stdout")


def images_of(notebook: NotebookNode, cell_id: str) -> int:
    """How many images (PNG or JPEG) the cell displayed."""
    return sum(
        bool({"image/png", "image/jpeg"} & o.get("data", {}).keys())
        for o in outputs_of(notebook, cell_id)
    )


@pytest.fixture(scope="module")
def executed(mini_run: MiniRun, tmp_path_factory: pytest.TempPathFactory) -> NotebookNode:
    """The notebook run top to bottom in a fresh kernel, in the notebooks/ folder of the
    mini run's project, plus a last cell printing the kernel's interpreter. Fails when
    any process of the kernel (Python or Spark's JVM) outlives it."""
    folder = mini_run.project / "notebooks"
    folder.mkdir(exist_ok=True)
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(INTERPRETER_PROBE, id="interpreter-probe"))
    token = uuid.uuid4().hex
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", RUN_MARKER: token}
    client = NotebookClient(
        notebook,
        km=kernel_manager(tmp_path_factory.mktemp("kernels")),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        # We pass our own manager, so nbclient shuts the kernel down only when told to.
        client.execute(env=environment, cleanup_kc=True)
    finally:
        leaked = _wait_for_exit(f"{RUN_MARKER}={token}")
        for pid in leaked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not leaked, f"processes of the notebook's kernel still alive: {leaked}"
    return notebook


def _wait_for_exit(marker: str) -> dict[int, str]:
    """The processes still holding ``marker`` after up to ``LEAK_WAIT_S`` seconds."""
    deadline = time.monotonic() + LEAK_WAIT_S
    while (alive := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


def test_kernel_runs_this_interpreter(executed: NotebookNode) -> None:
    assert stdout_of(executed, "interpreter-probe").strip() == sys.executable


def test_no_cell_failed(executed: NotebookNode) -> None:
    errors = [
        o for cell in executed.cells for o in cell.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors


def test_run_counts_match_the_run(executed: NotebookNode, mini_run: MiniRun) -> None:
    metrics = json.loads((mini_run.data / "08_reporting/run_metrics.json").read_text())
    printed = stdout_of(executed, "run-metrics")
    assert "status: complete" in printed
    images = metrics["images"]
    assert f"{images['read']} read, {images['embedded']} embedded, " in printed
    assert f"{len(mini_run.bad)} quarantined" in printed
    assert f"{len(mini_run.bad)} file(s) quarantined" in stdout_of(executed, "quarantine")


def test_accuracy_is_the_runs(executed: NotebookNode, mini_run: MiniRun) -> None:
    metrics = json.loads((mini_run.data / "08_reporting/classification_metrics.json").read_text())
    printed = stdout_of(executed, "classification-metrics")
    accuracy = re.search(r"^accuracy: (\S+)$", printed, re.MULTILINE)
    assert accuracy, printed
    assert float(accuracy.group(1)) == pytest.approx(metrics["accuracy"], abs=5e-5)
    assert f"k = {metrics['k']}, {metrics['classes']} classes" in printed


def test_plots_are_images(executed: NotebookNode) -> None:
    shown = {cell: images_of(executed, cell) for cell in PLOT_CELLS}
    assert all(shown.values()), shown


def test_one_photo_gets_three_known_labels(executed: NotebookNode, mini_run: MiniRun) -> None:
    printed = stdout_of(executed, "one-photo")
    top = re.findall(r"^\d\. (.+): (\d\.\d+)$", printed, re.MULTILINE)
    assert len(top) == 3, printed
    metrics = json.loads((mini_run.data / "08_reporting/classification_metrics.json").read_text())
    classes = metrics["per_class"].keys()
    assert {label for label, _ in top} <= classes
    probabilities = [float(p) for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-3
    assert images_of(executed, "one-photo") == 1


def test_report_path_is_the_scratch_projects(executed: NotebookNode, mini_run: MiniRun) -> None:
    printed = stdout_of(executed, "run-report").strip()
    assert printed == f"run report: {mini_run.data / '08_reporting/run_report.html'}"


def test_committed_notebook_is_clean() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].source.strip() == "%load_ext kedro.ipython"
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
