"""The examples in examples/python/ run against the real broker."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(os.environ.get(
    "COMPUTENET_EXAMPLES_DIR",
    Path(__file__).resolve().parents[2] / "examples" / "python"))


def run(net, script: str, *args: str) -> subprocess.CompletedProcess:
    env = net.env("alice")
    env.pop("COMPUTENET_CONFIG", None)
    env["XDG_CONFIG_HOME"] = str(net.dir / "no-config")
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_submit_and_wait_example(net) -> None:
    done = run(net, "submit_and_wait.py", "--", "sh", "-c", "echo hi")
    assert "submitted hub-" in done.stdout
    assert ": succeeded" in done.stdout
    assert "exit code 0 on site-" in done.stdout


def test_sweep_example_submits_twenty_jobs(net) -> None:
    done = run(net, "sweep.py")
    assert "20 of 20 succeeded" in done.stdout
    assert done.stdout.count(" succeeded exit 0 ") == 20


def test_statement_to_csv_example(net, tmp_path: Path) -> None:
    out = tmp_path / "statement.csv"
    done = run(net, "statement_to_csv.py", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["sequence", "time", "kind", "job_id", "amount",
                       "held_change", "detail"]
    net_amount = sum(int(row[4]) for row in rows[1:])
    assert f"net {net_amount} minor units" in done.stderr
    assert rows[1][2] == "topup"
