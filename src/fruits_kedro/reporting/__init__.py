"""The run report: the one page a data scientist opens after a run, written when the run ends."""
