"""TensorFlow, absl and LiteRT start-up chatter kept out of the logs.

The native libraries write straight to the process's file descriptor 2 (``INFO: Created
TensorFlow Lite XNNPACK delegate``, ``oneDNN custom operations are on``, the converter's
``I0000 … reader.cc`` lines), where no Python logging setting reaches them. While a model is
built, :func:`quiet_native_logs` sends that descriptor to a temporary file, then writes back
what is not chatter: errors, and everything when the block raised. ``FRUITS_NATIVE_LOGS=1``
(in the environment of the driver and of the Spark workers) leaves the output untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

SHOW_VARIABLE = "FRUITS_NATIVE_LOGS"
STDERR = 2
# absl/TF info and warning lines (``I0000 00:00:… port.cc:153] …``), TFLite's ``INFO:`` lines,
# and the few unprefixed lines of TensorFlow's start-up and of its int8 converter.
CHATTER = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d\d"
    r"|INFO: "
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:"
    r"|fully_quantize: \d"  # the int8 converter's settings
    r")"
)


def is_chatter(line: str) -> bool:
    """Whether a line of native output is start-up chatter rather than an error."""
    return bool(CHATTER.match(line))


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Hold back the native libraries' chatter written to stderr inside the block."""
    if os.environ.get(SHOW_VARIABLE) == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(STDERR)
    failed = False
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), STDERR)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, STDERR)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines(True) if failed or not is_chatter(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
