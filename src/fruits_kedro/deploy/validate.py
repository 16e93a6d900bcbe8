"""Validation of a request against botocore's service model, enums included.

botocore checks names, types, required members and ranges, but not enum values, and moto accepts
any enum value silently: :func:`enum_errors` walks the input shape and checks every string member
that has an enum. Both run before each call and in the tests.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from botocore.model import OperationModel, Shape


class RequestValidationError(ValueError):
    """A request does not fit the AWS API of its operation."""


@cache
def operation_model(service: str, operation: str) -> OperationModel:
    """The botocore model of ``service``'s ``operation`` (``"emr"``, ``"RunJobFlow"``)."""
    return botocore.session.get_session().get_service_model(service).operation_model(operation)


def validate_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Check ``params`` against the input shape of the operation, enums included.

    Raises:
        RequestValidationError: What is wrong, and where in the request.
    """
    shape = operation_model(service, operation).input_shape
    try:
        validate_parameters(params, shape)
    except ParamValidationError as exc:
        raise RequestValidationError(f"{service} {operation}: {exc}") from exc
    errors = list(enum_errors(params, shape, ""))
    if errors:
        raise RequestValidationError(f"{service} {operation}: " + "; ".join(errors))


def enum_errors(value: Any, shape: Shape, path: str) -> Iterator[str]:
    """Every enum violation under ``value``, as ``<path>: <value> is not one of [...]``."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            if name in value:
                yield from enum_errors(value[name], member, f"{path}.{name}".lstrip("."))
    elif shape.type_name == "list" and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from enum_errors(item, shape.member, f"{path}[{index}]")  # type: ignore[attr-defined]
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from enum_errors(key, shape.key, f"{path}<key>")  # type: ignore[attr-defined]
            yield from enum_errors(item, shape.value, f"{path}[{key!r}]")  # type: ignore[attr-defined]
    elif shape.type_name == "string" and shape.enum and value not in shape.enum:
        yield f"{path or '<value>'}: {value!r} is not one of {list(shape.enum)}"
