"""Tests of the infrastructure-as-code template in ``infra/``."""
