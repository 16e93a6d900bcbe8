"""One command for the benchmarks; each runs the project's real code and prints one JSON line::

    python -m fruits_kedro.bench embedding    [--input-dir DIR] [--weights FILE] [--engine E]
    python -m fruits_kedro.bench end-to-end   [--input-dir DIR]
    python -m fruits_kedro.bench cluster      --master spark://127.0.0.1:7077 [--input-dir DIR]
    python -m fruits_kedro.bench incremental  [--input-dir DIR] [--new 200]
    python -m fruits_kedro.bench int8         [--input-dir DIR] [--calibration-images 200]
    python -m fruits_kedro.bench app          [--input-dir DIR] [--run-dir PROJECT]

Defaults read the shared sample and weights (``$FRUITS_SHARED`` or ``../shared``). Run each alone:
the cores are shared.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fruits_kedro.bench import app, cluster, embedding, end_to_end, incremental, int8
from fruits_kedro.bench.workspace import image_files, shared_folder
from fruits_kedro.model.mobilenet import WEIGHTS_FILE_NAME

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

BENCHMARKS: dict[str, ModuleType] = {
    "embedding": embedding,
    "end-to-end": end_to_end,
    "cluster": cluster,
    "incremental": incremental,
    "int8": int8,
    "app": app,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The sub-command and its options; the shared ones first."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--input-dir", type=Path, default=shared_folder() / "data/fruits-360-sample"
    )
    shared.add_argument(
        "--weights", type=Path, default=shared_folder() / "models" / WEIGHTS_FILE_NAME
    )
    shared.add_argument("--engine", default=None, help="default: the project's parameter")
    shared.add_argument("--input-size", type=int, default=224)
    shared.add_argument(
        "--params", default="", help="more Kedro params, e.g. embedding.batch_size=16"
    )
    shared.add_argument("--project-dir", type=Path, default=Path.cwd())
    shared.add_argument(
        "--keep", type=Path, help="run in this new folder and keep it (default: a temporary one)"
    )
    shared.add_argument("--output", type=Path, help="also write the JSON result to this file")
    parser = argparse.ArgumentParser(
        prog="python -m fruits_kedro.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module in BENCHMARKS.items():
        summary = (module.__doc__ or "").split("\n\n")[0]
        command = commands.add_parser(name, parents=[shared], help=summary, description=summary)
        module.add_arguments(command)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark and print its JSON line."""
    args = parse_args(argv)
    files = image_files(args.input_dir)
    if not files:
        raise SystemExit(f"no image below {args.input_dir}: pass --input-dir")
    run: Callable[[list[Path], argparse.Namespace], dict[str, Any]] = BENCHMARKS[args.benchmark].run
    line = json.dumps(run(files, args))
    if args.output:
        args.output.write_text(line + "\n")
    print(line)  # noqa: T201  (the benchmark's output)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    raise SystemExit(main())
