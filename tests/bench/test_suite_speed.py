"""Speed of the suite itself, reported by pytest-benchmark (`nox -s bench`), never asserted
against the clock: the gate against loading the YAML alone, and a whole native run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.project import ROOT


def _gate():
    # A fresh interpreter each time: the user's wall time includes imports.
    subprocess.run([sys.executable, "-m", "conformance", "check"], cwd=ROOT, check=True, capture_output=True)


def _load_yaml_only():
    subprocess.run([sys.executable, "-c", "from conformance import manifests; manifests.load('manifests')"],
                   cwd=ROOT, check=True, capture_output=True)


def _native_run():
    subprocess.run([sys.executable, "-m", "conformance", "run", "--target", "native"], cwd=ROOT, check=True,
                   capture_output=True)


@pytest.mark.benchmark(group="gate")
def test_gate_wall_time(benchmark):
    benchmark.pedantic(_gate, rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="gate")
def test_load_yaml_wall_time(benchmark):
    benchmark.pedantic(_load_yaml_only, rounds=5, warmup_rounds=1)


@pytest.mark.live
@pytest.mark.benchmark(group="native")
def test_native_run_wall_time(benchmark):
    benchmark.pedantic(_native_run, rounds=3, warmup_rounds=0)
