"""Console logs a person reads: plain lines off a terminal, Kedro's rich handler on one.

``conf/logging.yml`` sends every record to the ``console`` handler, a plain
``logging.StreamHandler`` on stdout: one line per record, never wrapped, fit for CI,
spark-submit and EMR step logs. When stdout and stderr are a terminal,
:func:`use_rich_on_terminal` swaps it for Kedro's ``RichHandler``, whose console the live
progress bar shares, so that log lines print above the bar.
"""

from __future__ import annotations

import logging
import sys

CONSOLE_HANDLER = "console"


def interactive() -> bool:
    """Whether a person watches the output: stdout and stderr are a terminal."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def use_rich_on_terminal() -> None:
    """On a terminal, replace the root logger's plain ``console`` handler by a rich one."""
    if not interactive():
        return
    from kedro.logging import RichHandler  # noqa: PLC0415  (rich is only for terminals)

    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == CONSOLE_HANDLER and type(handler) is logging.StreamHandler:
            rich = RichHandler(rich_tracebacks=True, level=handler.level)
            rich.set_name(CONSOLE_HANDLER)
            root.removeHandler(handler)
            root.addHandler(rich)
