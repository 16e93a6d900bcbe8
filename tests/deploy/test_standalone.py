"""``fruits-cluster`` without a cluster: what it refuses, and a clean ``down``."""

from __future__ import annotations

import json
import os

import pytest

from fruits_kedro.deploy import standalone
from fruits_kedro.deploy.standalone import ClusterError, ClusterState, Process


def test_down_without_a_cluster_says_so_and_succeeds(tmp_path, capsys):
    assert standalone.main(["down", "--dir", str(tmp_path)]) == 0
    assert "no cluster running" in capsys.readouterr().out
    assert standalone.main(["status", "--dir", str(tmp_path)]) == 1


def test_up_needs_the_packaged_project(tmp_path, capsys):
    code = standalone.main(["up", "--dir", str(tmp_path / "c"), "--dist", str(tmp_path)])
    assert code == 1
    assert "make package" in capsys.readouterr().out


def test_down_leaves_a_reused_pid_alone(tmp_path):
    """A recorded PID that now belongs to another program is not signalled."""
    me = Process("master", os.getpid(), 7077, "master.log")  # this pytest, not a Spark JVM
    ClusterState("spark://127.0.0.1:7077", "http://127.0.0.1:8080", "py", me).write(tmp_path)
    assert standalone.down(tmp_path) == []
    assert not (tmp_path / standalone.STATE_FILE).exists()


def test_state_round_trips(tmp_path):
    workers = [Process("worker-1", 11, 4001, "w1.log"), Process("worker-2", 12, 4002, "w2.log")]
    state = ClusterState(
        "spark://127.0.0.1:1", "http://127.0.0.1:2", "py", Process("m", 10, 1, "m")
    )
    state.workers = workers
    state.write(tmp_path)
    assert ClusterState.read(tmp_path) == state
    assert json.loads((tmp_path / "cluster.json").read_text())["workers"][1]["port"] == 4002


def test_the_executor_environment_needs_bootstrap_and_wheel(tmp_path):
    (tmp_path / "requirements-executor.txt").write_text("numpy==2.4.6\n")
    with pytest.raises(ClusterError, match=r"bootstrap\.sh"):
        standalone.ensure_executor_python(tmp_path, tmp_path / "cluster")
