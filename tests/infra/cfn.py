"""Reading the parsed CloudFormation template: intrinsics as text, policy statements, IAM matching.

The evaluation covers what the template's policies use: ``Action`` / ``Resource`` wildcards
(``*`` and ``?``), explicit denies, and the condition operators ``StringEquals``,
``StringNotEquals`` (and ``StringNotEqualsIfExists``), ``StringLike``, ``ArnEquals``, ``ArnLike``,
``Null``, ``Bool`` and ``NumericLessThan``. Any other operator fails the test instead of being
ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "fruits-infra.yaml"


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else ``[value]``."""
    return value if isinstance(value, list) else [value]


def text(value: Any) -> str:
    """One canonical string for a literal, ``Ref``, ``Fn::GetAtt`` or string ``Fn::Sub``."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return value["Fn::Sub"]
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    raise AssertionError(f"unexpected intrinsic in a policy: {value}")


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical name."""
    return {n: r for n, r in template["Resources"].items() if r["Type"] == resource_type}


def role_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the inline policies of an ``AWS::IAM::Role``."""
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def identity_statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of the roles' inline policies and of the (managed) policies."""
    for role in resources(template, "AWS::IAM::Role").values():
        yield from role_statements(role)
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in resources(template, kind).values():
            yield from policy["Properties"]["PolicyDocument"]["Statement"]


def bucket_policy(template: dict[str, Any], bucket: str) -> list[dict[str, Any]]:
    """The statements of the bucket policy of ``bucket`` (a logical name)."""
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    (policy,) = [p for p in policies if p["Properties"]["Bucket"] == {"Ref": bucket}]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Statements keyed by their ``Sid``."""
    return {s["Sid"]: s for s in statements}


def iam_match(pattern: str, value: str) -> bool:
    """Whether an IAM ``Action`` / ``Resource`` pattern (``*``, ``?``) matches ``value``."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    values = [text(v) for v in as_list(expected)]
    present = key in context
    if operator == "Null":
        return present is (values != ["true"])
    # IAM: a missing key makes a negated operator (and any ...IfExists one) true, the others false.
    if operator in ("StringNotEquals", "StringNotEqualsIfExists"):
        return not present or context[key] not in values
    if not present:
        return False
    actual = context[key]
    if operator in ("StringEquals", "ArnEquals", "Bool"):
        return actual in values
    if operator in ("StringLike", "ArnLike"):
        return any(iam_match(v, actual) for v in values)
    if operator == "NumericLessThan":
        return float(actual) < float(values[0])
    raise AssertionError(f"condition operator not evaluated by this test: {operator}")


def conditions_hold(statement: dict[str, Any], context: Mapping[str, str]) -> bool:
    """Whether every condition of ``statement`` holds for the request ``context``."""
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, block in statement.get("Condition", {}).items()
        for key, expected in block.items()
    )


def applies(
    statement: dict[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    """Whether ``statement`` covers ``action`` on ``resource`` under ``context``."""
    return (
        any(iam_match(a, action) for a in as_list(statement["Action"]))
        and any(iam_match(text(r), resource) for r in as_list(statement["Resource"]))
        and conditions_hold(statement, context)
    )


def allowed(
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """IAM's verdict within ``statements``: an allow that applies, and no deny that applies."""
    context = context or {}
    verdicts = {s["Effect"] for s in statements if applies(s, action, resource, context)}
    return verdicts == {"Allow"}


def denied(
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Whether an explicit deny of ``statements`` applies."""
    context = context or {}
    return any(s["Effect"] == "Deny" and applies(s, action, resource, context) for s in statements)
