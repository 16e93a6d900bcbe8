"""What watches a run: progress, run metrics, Spark's status store and event logs, log handlers."""
