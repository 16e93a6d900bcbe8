"""Benchmarks: the project's real pipelines against the engine alone, behind one command
(``python -m fruits_kedro.bench end-to-end | embedding | cluster | incremental | int8``)."""
