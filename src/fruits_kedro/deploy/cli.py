"""``fruits-emr``: launch the project on AWS EMR at minimal cost.

Results go to stdout as JSON (logs as text); progress goes to stderr. ``--dry-run`` prints each
AWS request as one JSON line instead of sending it. Exit codes: 0 done; 1 failed on AWS (step
failed, AWS error); 2 nothing launched (configuration, region, missing artifacts or credentials).

``up``, ``submit`` and ``run`` launch on the infrastructure stack (``--stack``, default: ``stack``
of conf/emr/cluster.yml): roles, subnet, security groups, security configuration, buckets and
key are its outputs, read with DescribeStacks (also in a dry run, unless ``--stack-outputs``
names a saved ``aws cloudformation describe-stacks`` answer).

    fruits-emr estimate --images 90000
    fruits-emr run --dry-run
    fruits-emr up --notebook && fruits-emr submit --cluster-id j-XXXX --wait
    fruits-emr down --cluster-id j-XXXX
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fruits_kedro.deploy import aws, emr, stack
from fruits_kedro.deploy.config import ConfigError, load_settings, with_stack
from fruits_kedro.deploy.estimate import estimate
from fruits_kedro.deploy.regions import RegionNotAllowedError
from fruits_kedro.deploy.validate import RequestValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from fruits_kedro.deploy.config import DeploySettings

logger = logging.getLogger(__name__)

NOTHING_LAUNCHED = (
    ConfigError,
    RegionNotAllowedError,
    RequestValidationError,
    stack.StackError,
    emr.MissingArtifactsError,
    aws.MissingCredentialsError,
)
EXIT_FAILED, EXIT_NOT_LAUNCHED = 1, 2
SECONDS_PER_MINUTE = 60.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (errors are one line on stderr, no traceback)."""
    args = build_parser().parse_args(argv)
    with _progress_to_stderr():
        try:
            return int(COMMANDS[args.command](args))
        except NOTHING_LAUNCHED as exc:
            return _fail(exc, EXIT_NOT_LAUNCHED)
        except aws.DeployError as exc:
            return _fail(exc, EXIT_FAILED)


def build_parser() -> argparse.ArgumentParser:
    """The parser; global options are accepted before or after the command."""
    parser = argparse.ArgumentParser(prog="fruits-emr", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _global_options(parser, region=None, dry_run=False, conf_dir=Path("conf"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, options in _SUBCOMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        # Given after the command they win; absent, they keep the values given before it.
        _global_options(sub, **dict.fromkeys(("region", "dry_run", "conf_dir"), argparse.SUPPRESS))
        for option in options:
            option(sub)
    return parser


def _global_options(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    parser.add_argument("--region", default=defaults["region"], help="EU/EEA region to use")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=defaults["dry_run"],
        help="print the AWS requests as JSON lines, send none (up, submit and run still read "
        "the stack's outputs, unless --stack-outputs)",
    )
    parser.add_argument("--conf-dir", type=Path, default=defaults["conf_dir"], help="default: conf")


def _images(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--images", type=_positive_int, required=True, help="number of images")


def _dist(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--dist", type=Path, default=Path("dist"), help="artifacts (default: dist)")


def _cluster_id(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--cluster-id", required=True, help="EMR cluster id, j-...")


def _polling(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--poll-seconds", type=float, default=30.0, help="default: 30")
    sub.add_argument("--timeout-minutes", type=float, default=180.0, help="default: 180")


def _wait(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--wait", action="store_true", help="wait for the step to end")


def _step_id(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--step-id", help="default: the most recent step")


def _stack(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--stack", help="CloudFormation stack of infra/fruits-infra.yaml (default: cluster.yml)"
    )
    sub.add_argument(
        "--stack-outputs",
        type=Path,
        help="read the stack's outputs from this saved `aws cloudformation describe-stacks` JSON",
    )


def _notebook(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--notebook",
        action="store_true",
        help="add JupyterEnterpriseGateway and Livy, for an EMR Studio Workspace to attach",
    )


_SUBCOMMANDS: list[tuple[str, str, list[Callable[[argparse.ArgumentParser], None]]]] = [
    ("estimate", "expected wall time and cost of a run", [_images]),
    ("up", "upload dist/ and start a long-lived cluster", [_dist, _stack, _notebook]),
    (
        "submit",
        "upload dist/ and add the step to a cluster",
        [_cluster_id, _dist, _wait, _polling, _stack],
    ),
    ("status", "state of a cluster and its steps", [_cluster_id]),
    ("logs", "stderr/stdout of a step, from the log URI", [_cluster_id, _step_id]),
    ("down", "terminate a cluster", [_cluster_id]),
    (
        "run",
        "up + step + wait + metrics + down, on a self-terminating cluster",
        [_dist, _polling, _stack],
    ),
]


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _setup(
    args: argparse.Namespace, *, needs_dist: bool = False, needs_stack: bool = False
) -> tuple[DeploySettings, aws.AwsCaller]:
    """Local checks first (settings, region, ``dist/``), then the caller: printer or boto3;
    then, if ``needs_stack``, the stack's outputs."""
    settings = load_settings(args.conf_dir, args.region)
    if needs_dist:
        emr.dist_files(args.dist)
    caller: aws.AwsCaller
    if args.dry_run:
        logger.info("dry run: the requests below are printed, none is sent")
        caller = aws.DryRunCaller(settings.region, sys.stdout)
    else:
        caller = aws.BotoCaller(settings.region)
    if needs_stack:
        settings = with_stack(settings, _stack_outputs(args, settings, caller))
    return settings, caller


def _stack_outputs(
    args: argparse.Namespace, settings: DeploySettings, caller: aws.AwsCaller
) -> stack.StackOutputs:
    """From ``--stack-outputs``, else ``DescribeStacks`` (sent for real, also in a dry run)."""
    name = args.stack or settings.cluster.stack
    if args.stack_outputs is not None:
        return stack.load_stack_file(args.stack_outputs, name)
    if not args.dry_run:
        return stack.read_stack(caller, name)
    try:
        reader = aws.BotoCaller(settings.region)
    except aws.MissingCredentialsError as exc:
        raise aws.MissingCredentialsError(
            f"{exc}; a dry run reads the outputs of stack {name!r} (DescribeStacks, read-only): "
            "log in, or pass --stack-outputs with a saved `aws cloudformation describe-stacks`"
        ) from exc
    logger.info("dry run: reading the outputs of stack %s (DescribeStacks)", name)
    return stack.read_stack(reader, name)


def _polling_of(args: argparse.Namespace) -> emr.Polling:
    return emr.Polling(args.poll_seconds, args.timeout_minutes * SECONDS_PER_MINUTE)


def _estimate(args: argparse.Namespace) -> int:
    settings = load_settings(args.conf_dir, args.region)
    _emit(estimate(args.images, settings.cluster))
    return 0


def _up(args: argparse.Namespace) -> int:
    settings, caller = _setup(args, needs_dist=True, needs_stack=True)
    cluster_id = emr.up(caller, settings, args.dist, notebook=args.notebook)
    _emit({"cluster_id": cluster_id, "region": settings.region, "notebook": args.notebook}, args)
    return 0


def _submit(args: argparse.Namespace) -> int:
    settings, caller = _setup(args, needs_dist=True, needs_stack=True)
    wait = _polling_of(args) if args.wait else None
    step_id = emr.submit(caller, settings, args.dist, args.cluster_id, wait)
    _emit({"cluster_id": args.cluster_id, "step_id": step_id, "waited": args.wait}, args)
    return 0


def _status(args: argparse.Namespace) -> int:
    _, caller = _setup(args)
    _emit(emr.status(caller, args.cluster_id), args)
    return 0


def _logs(args: argparse.Namespace) -> int:
    settings, caller = _setup(args)
    entries = emr.step_logs(caller, settings, args.cluster_id, args.step_id)
    if not args.dry_run:
        if not entries:
            sys.stderr.write("fruits-emr: no step log yet (EMR copies them minutes after)\n")
        for uri, text in entries:
            sys.stdout.write(f"== {uri}\n" + (text.rstrip("\n") + "\n" if text else ""))
    return 0


def _down(args: argparse.Namespace) -> int:
    settings, caller = _setup(args)
    emr.terminate(caller, settings, args.cluster_id)
    _emit({"cluster_id": args.cluster_id, "terminate_requested": True}, args)
    return 0


def _run(args: argparse.Namespace) -> int:
    settings, caller = _setup(args, needs_dist=True, needs_stack=True)
    _emit(emr.run(caller, settings, args.dist, _polling_of(args)), args)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "estimate": _estimate,
    "up": _up,
    "submit": _submit,
    "status": _status,
    "logs": _logs,
    "down": _down,
    "run": _run,
}


def _emit(result: dict[str, Any], args: argparse.Namespace | None = None) -> None:
    """A result as JSON on stdout; nothing in a dry run, where stdout holds only the requests."""
    if args is None or not args.dry_run:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")


def _fail(exc: Exception, code: int) -> int:
    message = " ".join(str(exc).split())
    sys.stderr.write(f"fruits-emr: error: {message}\n")
    return code


@contextmanager
def _progress_to_stderr() -> Iterator[None]:
    """The deploy package's INFO messages on stderr, and only there, during one command.

    Not propagated: a handler of the root logger (Kedro installs one on stdout) would mix them
    with the JSON results.
    """
    log = logging.getLogger("fruits_kedro.deploy")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fruits-emr: %(message)s"))
    previous = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.level, log.propagate = previous


if __name__ == "__main__":
    raise SystemExit(main())
