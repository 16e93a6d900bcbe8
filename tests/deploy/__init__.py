"""Tests of the EMR launcher (``fruits_kedro.deploy``)."""
