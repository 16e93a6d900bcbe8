"""The parsed template, shared by the modules of ``tests/infra``."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.decode import decode_str

from tests.infra.cfn import TEMPLATE


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The template parsed by cfn-lint's decoder (short-form tags become ``Fn::*`` keys)."""
    parsed, errors = decode_str(TEMPLATE.read_text())
    assert errors == []
    return parsed
