"""Native start-up chatter on file descriptor 2 is held back; errors are not."""

from __future__ import annotations

import os

import pytest

from fruits_kedro.model.native_logs import SHOW_VARIABLE, quiet_native_logs

CHATTER = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796121414.042725   31288 port.cc:153] oneDNN custom operations are on.\n"
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild.\n"
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
)
ERROR = "E0000 00:00:1796121414.1   31288 cuda.cc:1] something real went wrong\n"


def write_native(text: str) -> None:
    os.write(2, text.encode())  # as C++ code does: below Python's sys.stderr


def test_chatter_is_held_back_and_errors_pass(capfd, monkeypatch):
    monkeypatch.delenv(SHOW_VARIABLE, raising=False)
    with quiet_native_logs():
        write_native(CHATTER + ERROR)
    assert capfd.readouterr().err == ERROR


def test_everything_is_written_when_the_block_fails(capfd, monkeypatch):
    monkeypatch.delenv(SHOW_VARIABLE, raising=False)
    with pytest.raises(RuntimeError), quiet_native_logs():
        write_native(CHATTER)
        raise RuntimeError("conversion failed")
    assert capfd.readouterr().err == CHATTER


def test_the_setting_shows_everything(capfd, monkeypatch):
    monkeypatch.setenv(SHOW_VARIABLE, "1")
    with quiet_native_logs():
        write_native(CHATTER)
    assert capfd.readouterr().err == CHATTER
