"""Benchmarks, load tests and their report (run with tox -e bench / tox -e load)."""
