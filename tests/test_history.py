"""Every run leaves a Spark event log; ``make history`` serves them on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request

import pytest

from fruits_kedro.deploy.standalone import free_port
from tests.conftest import PROJECT_ROOT, copy_project, run_kedro
from tests.processes import alive, cmdline, wait_for

pytestmark = [pytest.mark.shared, pytest.mark.e2e]

HISTORY_CLASS = b"org.apache.spark.deploy.history.HistoryServer"


def applications(url: str) -> list[dict]:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/applications", timeout=2) as response:
            return list(json.load(response))
    except OSError:
        return []


def test_history_server_lists_the_finished_and_the_failed_run(mini_run, tmp_path):
    project = copy_project(tmp_path / "project")
    failed = run_kedro(project, "run", "--pipelines=reduction")  # no embeddings to reduce
    assert failed.returncode != 0
    events = project / "logs/spark-events"
    finished = list((mini_run.project / "logs/spark-events").glob("eventlog_v2_*"))
    assert finished and len(list(events.glob("eventlog_v2_*"))) == 1
    for log in finished:
        shutil.copytree(log, events / log.name)
    logged = sorted(p.name.removeprefix("eventlog_v2_") for p in events.glob("eventlog_v2_*"))

    port, folder = free_port(), tmp_path / "history"
    variables = [f"EVENTS_DIR={events}", f"HISTORY_DIR={folder}", f"HISTORY_PORT={port}"]
    make = ["make", "--no-print-directory", "-C", str(PROJECT_ROOT)]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    started = subprocess.run(
        [*make, "history", *variables], env=env, capture_output=True, text=True, check=False
    )
    pid_files = list(folder.glob("*HistoryServer*.pid"))
    pid = int(pid_files[0].read_text()) if pid_files else None
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        url = f"http://127.0.0.1:{port}"
        assert url in started.stdout
        listed = wait_for(
            "the History Server to list every run",
            lambda: (apps := applications(url)) and len(apps) >= len(logged) and apps,
            120,
        )
        assert sorted(app["id"] for app in listed) == logged
        assert all(app["attempts"][0]["completed"] for app in listed)
    finally:
        if pid is not None and HISTORY_CLASS in b" ".join(cmdline(pid)):
            os.kill(pid, signal.SIGTERM)
            wait_for("the History Server to stop", lambda: not alive(pid), 60)
