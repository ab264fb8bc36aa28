"""Statements: verified lines whose sums match the broker's ledger."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

import computenet
from computenet import JobState

WAIT = 120


def _balance(net, account: str) -> int:
    # The broker's own book (read-only, alongside the running broker).
    with sqlite3.connect(f"file:{net.db}?mode=ro", uri=True) as db:
        row = db.execute("SELECT balance FROM ledger_accounts WHERE name = ?",
                         (account,)).fetchone()
    return row[0]


def test_statement_sums_match_the_ledger(net, bob: computenet.Client) -> None:
    jobs = [bob.submit(command=["sh", "-c", f"exit {i % 2}"], cards=1 + i,
                       max_duration_s=60) for i in range(3)]
    ended = [job.wait(timeout=WAIT) for job in jobs]
    assert [j.state for j in ended] == [JobState.SUCCEEDED, JobState.FAILED,
                                        JobState.SUCCEEDED]
    # Every job of bob's has ended, so nothing is held and no charge is
    # pending.
    assert all(j.terminal for j in bob.jobs())

    statement = bob.statement()
    assert statement.account == "consumer:bob"
    assert statement.broker_id == "hub"
    assert statement.verified
    assert statement.net_amount == sum(line.amount for line in statement)
    # The ledger: the account's balance is the sum of its postings.
    assert statement.net_amount == _balance(net, "consumer:bob")
    # The top-up, then the charges of bob's jobs, each a usage line.
    kinds = [line.kind for line in statement]
    assert kinds[0] == "topup" and statement[0].amount > 0
    charged = sum(j.charged for j in bob.jobs())
    usage = [line for line in statement if line.kind == "usage"]
    assert -sum(line.amount for line in usage) == charged
    assert {line.job_id for line in usage} <= {j.job_id for j in bob.jobs()}
    # Every hold opened was released or drawn down.
    assert statement.held_change == 0
    assert [line.sequence for line in statement] == sorted(
        line.sequence for line in statement)

    # The CLI, reading the same statement, agrees line by line.
    cli = json.loads(net.cli("bob", "statement", "--format", "json"))
    assert cli["net_amount"] == statement.net_amount
    assert [(l["sequence"], l["kind"], l["job_id"], l["amount"],
             l["held_change"], l["detail"]) for l in cli["lines"]] == [
        (l.sequence, l.kind, l.job_id, l.amount, l.held_change, l.detail)
        for l in statement]

    # Periods: [since, until).
    first = statement[0]
    assert bob.statement(since=dt.datetime(2999, 1, 1)).net_amount == 0
    assert len(bob.statement(since="2999-01-01")) == 0
    assert list(bob.statement(until=first.created_ms + 1))[0] == first
    assert len(bob.statement(since=first.time)) == len(statement)
    with pytest.raises(computenet.InvalidArgument):
        bob.statement(since="yesterday")

    rows = statement.rows()
    assert len(rows) == len(statement)
    assert rows[0][:3] == (first.sequence,
                           first.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "topup")


def test_to_dataframe_when_pandas_is_installed(bob: computenet.Client) -> None:
    statement = bob.statement()
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            statement.to_dataframe()
        return
    frame = statement.to_dataframe()
    assert list(frame.columns) == list(statement.columns)
    assert int(frame["amount"].sum()) == statement.net_amount
