"""Console logging: plain lines off a terminal (conf/logging.yml), Kedro's rich handler on one."""

from __future__ import annotations

import logging
import sys

import pytest
import yaml
from kedro.logging import RichHandler

from fruits_kedro.observe import logs
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def console_handler():
    """The root logger with only the plain ``console`` handler of conf/logging.yml; Kedro's
    rich handler also installs rich tracebacks and captures warnings: both are undone."""
    root = logging.getLogger()
    saved, hook = list(root.handlers), sys.excepthook
    handler = logging.StreamHandler()
    handler.set_name(logs.CONSOLE_HANDLER)
    root.handlers = [handler]
    try:
        yield root
    finally:
        root.handlers, sys.excepthook = saved, hook
        logging.captureWarnings(False)


def test_the_project_logs_plain_lines_with_stock_classes_only():
    config = yaml.safe_load((PROJECT_ROOT / "conf/logging.yml").read_text())
    classes = {h["class"] for h in config["handlers"].values()}
    assert classes == {"logging.StreamHandler"}  # no KEDRO_LOGGING_MODULE_ALLOWLIST needed
    assert config["root"]["handlers"] == [logs.CONSOLE_HANDLER]
    assert {config["loggers"][name]["level"] for name in ("tensorflow", "absl")} == {"ERROR"}


def test_a_terminal_gets_the_rich_handler(console_handler, monkeypatch):
    monkeypatch.setattr(logs, "interactive", lambda: True)
    logs.use_rich_on_terminal()
    [handler] = [h for h in console_handler.handlers if h.get_name() == logs.CONSOLE_HANDLER]
    assert isinstance(handler, RichHandler)
    assert handler.get_name() == logs.CONSOLE_HANDLER


def test_elsewhere_the_plain_handler_stays(console_handler, monkeypatch):
    monkeypatch.setattr(logs, "interactive", lambda: False)
    logs.use_rich_on_terminal()
    [handler] = [h for h in console_handler.handlers if h.get_name() == logs.CONSOLE_HANDLER]
    assert type(handler) is logging.StreamHandler
