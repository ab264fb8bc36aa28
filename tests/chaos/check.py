#!/usr/bin/python3
"""The chaos run's checker: reads what a finished run left behind (its
manifest.json, every broker's SQLite file, the marker files the jobs wrote)
and checks that nothing was lost, stuck, run twice or billed wrong.

  /usr/bin/python3 tests/chaos/check.py RUN_DIR [--cli build/cli/computenet]

It is also what tests/chaos/chaos.py calls at the end of a run. It uses the
standard library only: the broker files are read with sqlite3 (read-only),
and the protobuf rows in them are decoded by the small wire-format reader
below (only the fields the checks need). Exit 0 when every check passes,
1 with the list of failures otherwise.

What it checks (issue 12, "Chaos test"):
  lost      every acknowledged job exists at its home broker, terminal or
            queued with a reason
  stuck     every acknowledged job is terminal once the settle time is over
  agree     the home broker and the broker that ran a forwarded job agree on
            its state, exit code and card-seconds; no broker ran a job its
            home does not know it forwarded there
  answer    every broker answered the probe within the bound, except while
            it was itself killed, stopped or starting up again
  doubled   no job ran to its end twice, started again after it ended, or
            started more often than its broker placed it (the markers the
            jobs write themselves); a succeeded job ran to its end
  ledger    `computenet ledger verify` passes on every broker's file; every
            broker's accounts sum to zero, nothing is still held; both sides
            of every clearing account agree
  billing   every succeeded job is charged exactly once (one closing usage
            record, at home as at the broker that ran it, the same amounts);
            every charge is card-seconds x price by the cumulative rounding
            rule, to the minor unit; no job was billed less than its markers
            show it ran
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys

QUEUED, PLACED, RUNNING, SUCCEEDED, FAILED, CANCELLED = 1, 2, 3, 4, 5, 6
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
STATE_NAMES = {0: "unspecified", 1: "queued", 2: "placed", 3: "running",
               4: "succeeded", 5: "failed", 6: "cancelled"}


# --- protobuf wire format (enough for JobInfo, LedgerEntry, UsageRecord) ---

def _varint(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode(data):
    """Field number -> list of raw values (int for varints and fixed, bytes
    for length-delimited)."""
    fields = {}
    pos = 0
    data = bytes(data)
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value = int.from_bytes(data[pos:pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos:pos + length]
            pos += length
        elif wire == 5:
            value = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        fields.setdefault(number, []).append(value)
    return fields


def _int(fields, number, signed=False):
    value = fields.get(number, [0])[-1]
    if signed and value >= 1 << 63:
        value -= 1 << 64
    return value


def _str(fields, number):
    return fields.get(number, [b""])[-1].decode("utf-8", "replace")


def job_info(blob):
    f = decode(blob)
    spec = decode(f.get(3, [b""])[-1])
    nodes = max(1, _int(spec, 6))
    return {
        "job_id": _str(f, 1), "consumer": _str(f, 2), "state": _int(f, 4),
        "provider": _str(f, 5), "model": _str(f, 6),
        "price": _int(f, 8, True), "exit_code": _int(f, 9, True),
        "reason": _str(f, 10), "started_ms": _int(f, 12, True),
        "finished_ms": _int(f, 13, True), "card_seconds": _int(f, 14),
        "charged": _int(f, 15, True), "attempts": _int(f, 16),
        "remote_broker": _str(f, 30), "home_broker": _str(f, 31),
        "in_doubt": bool(_int(f, 33)), "cards": _int(spec, 5) * nodes,
        "name": _str(spec, 1),
    }


def ledger_entry(blob):
    f = decode(blob)
    return {"sequence": _int(f, 1), "key": _str(f, 3), "kind": _str(f, 4),
            "job_id": _str(f, 8), "provider": _str(f, 9),
            "record_id": _str(f, 10), "billed": _int(f, 11),
            "price": _int(f, 12, True), "remote_broker": _str(f, 14),
            "hold_id": _str(f, 21), "cumulative": _int(f, 26)}


def usage_record(blob):
    f = decode(blob)
    return {"record_id": _str(f, 1), "job_id": _str(f, 2),
            "provider": _str(f, 3), "cards": _int(f, 5),
            "start_ms": _int(f, 6, True), "end_ms": _int(f, 7, True),
            "card_seconds": _int(f, 8), "closes_job": bool(_int(f, 9))}


def charge(card_seconds, price):
    """docs/ledger.md: (x * price + 1800) / 3600, rounded half up."""
    return (card_seconds * price + 1800) // 3600


# --- reading a broker's file ---

class BrokerFile:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
        try:
            self.jobs = {}
            for (blob,) in db.execute("SELECT info FROM jobs"):
                job = job_info(blob)
                self.jobs[job["job_id"]] = job
            self.accounts = {
                name: (balance, held) for name, balance, held in db.execute(
                    "SELECT name, balance, held FROM ledger_accounts")}
            self.entries = {}
            for sequence, blob in db.execute(
                    "SELECT sequence, entry FROM ledger_entries"):
                self.entries[sequence] = ledger_entry(blob)
            self.postings = {}
            for sequence, account, amount in db.execute(
                    "SELECT sequence, account, amount FROM ledger_postings"):
                self.postings.setdefault(sequence, []).append((account, amount))
            self.holds = {}
            for row in db.execute(
                    "SELECT hold_id, job_id, account, amount, remaining, "
                    "billed_card_seconds, price_per_card_hour, open, "
                    "remote_broker FROM ledger_holds"):
                self.holds[row[0]] = dict(zip(
                    ("hold_id", "job_id", "account", "amount", "remaining",
                     "billed", "price", "open", "remote_broker"), row))
            self.records = {}
            for provider, record_id, job_id, attempt, blob in db.execute(
                    "SELECT provider, record_id, job_id, attempt, record "
                    "FROM usage_records"):
                record = usage_record(blob)
                record["attempt"] = attempt
                self.records.setdefault(job_id, []).append(record)
        finally:
            db.close()

    def charges(self, job_id, kinds=("usage", "remote_usage")):
        """(entry, amount) for every charge of job_id: amount is what the
        payer lost (the sum of the negative postings)."""
        out = []
        for sequence, entry in self.entries.items():
            if entry["job_id"] == job_id and entry["kind"] in kinds:
                paid = -sum(a for _, a in self.postings.get(sequence, [])
                            if a < 0)
                out.append((entry, paid))
        return out


# --- markers ---

def read_markers(markers_dir):
    """job id -> rank -> list of ("start"|"end", ms, pid). A job appends
    `start <ms> <pid> <node>` when an attempt begins and `end <ms> <pid>`
    when it ran to its end (before its exit code)."""
    out = {}
    if not os.path.isdir(markers_dir):
        return out
    for name in sorted(os.listdir(markers_dir)):
        job_id, _, rank = name.rpartition(".")
        if not job_id or not rank.isdigit():
            continue
        with open(os.path.join(markers_dir, name), errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[0] in ("start", "end"):
                    try:
                        out.setdefault(job_id, {}).setdefault(int(rank), []).append(
                            (parts[0], int(parts[1]), parts[2]))
                    except ValueError:
                        pass
    return out


# --- the checks ---

class Report:
    def __init__(self):
        self.failures = []
        self.counts = {"lost": 0, "doubled": 0, "stuck": 0,
                       "ledger failures": 0, "minor units unaccounted": 0,
                       "disagreements": 0, "slow answers": 0,
                       "wrong outcomes": 0, "crashes": 0, "billing": 0}

    def fail(self, what, text, count=1):
        self.failures.append("%s: %s" % (what, text))
        if what in self.counts:
            self.counts[what] += count


def check_run(run_dir, cli=None, verbose=True):
    with open(os.path.join(run_dir, "manifest.json")) as f:
        manifest = json.load(f)
    cli = cli or manifest.get("cli")
    report = Report()
    brokers = {}
    for name in manifest["brokers"]:
        brokers[name] = BrokerFile(name, os.path.join(run_dir, name + ".db"))
    markers = read_markers(os.path.join(run_dir, "markers"))
    acked = manifest["jobs"]

    # Where each job ran (the broker whose copy is not a forward of it).
    def executing(job_id):
        home = brokers.get(job_id.rpartition("-")[0])
        if home is None or job_id not in home.jobs:
            return None, None
        job = home.jobs[job_id]
        if job["remote_broker"]:
            remote = brokers.get(job["remote_broker"])
            if remote is None:
                return None, None
            return remote, remote.jobs.get(job_id)
        return home, job

    # lost / stuck / expected outcome
    for submitted in acked:
        job_id = submitted["job_id"]
        home = brokers.get(submitted["home"])
        job = home.jobs.get(job_id) if home else None
        if job is None:
            report.fail("lost", "%s (%s, acknowledged by %s) is not in its "
                        "home broker's file" % (job_id, submitted["kind"],
                                                 submitted["home"]))
            continue
        if job["state"] not in TERMINAL:
            if job["state"] == QUEUED and not job["reason"]:
                report.fail("lost", "%s is queued with no reason" % job_id)
            report.fail("stuck", "%s (%s) is still %s after the settle time%s: %s"
                        % (job_id, submitted["kind"], STATE_NAMES[job["state"]],
                           " at " + job["remote_broker"] if job["remote_broker"]
                           else "", job["reason"] or "(no reason)"))
            continue
        expected = submitted["expect"]
        ok = {"succeed": (SUCCEEDED,), "fail": (FAILED,),
              "cancel": (CANCELLED, SUCCEEDED)}[expected]
        if job["state"] not in ok or (expected == "fail" and job["exit_code"] != 3):
            report.fail("wrong outcomes", "%s (%s) should %s but ended %s "
                        "(exit %d, attempts %d): %s" % (
                            job_id, submitted["kind"], expected,
                            STATE_NAMES[job["state"]], job["exit_code"],
                            job["attempts"], job["reason"]))

    # agree: home and remote copies of forwarded jobs
    for name, broker in brokers.items():
        for job_id, job in broker.jobs.items():
            home_name = job_id.rpartition("-")[0]
            if home_name == name:
                if not job["remote_broker"]:
                    continue
                remote = brokers.get(job["remote_broker"])
                copy = remote.jobs.get(job_id) if remote else None
                if copy is None:
                    if job["state"] in (RUNNING, SUCCEEDED) or job["card_seconds"]:
                        report.fail("disagreements", "%s: home %s says it ran at "
                                    "%s, which has no such job" % (
                                        job_id, name, job["remote_broker"]))
                    continue
                for field in ("state", "exit_code", "card_seconds"):
                    if job[field] != copy[field]:
                        report.fail("disagreements", "%s: %s at home %s, %s at %s "
                                    "(%s)" % (job_id, field, job[field],
                                              copy[field], job["remote_broker"],
                                              copy["reason"]))
                        break
            else:
                # A copy here of another broker's job: its home must name
                # this broker as where it went, if it ever started here.
                home = brokers.get(home_name)
                home_job = home.jobs.get(job_id) if home else None
                ran = job["state"] in (RUNNING, SUCCEEDED) or job["card_seconds"]
                if ran and (home_job is None or home_job["remote_broker"] != name):
                    report.fail("disagreements", "%s ran at %s but its home %s %s"
                                % (job_id, name, home_name,
                                   "has no such job" if home_job is None else
                                   "says it went to '%s'" %
                                   home_job["remote_broker"]))

    # answer: probes outside each broker's own faults
    bound_ms = manifest["answer_bound_ms"]
    grace_ms = manifest["restart_grace_ms"]
    windows = {}
    for fault in manifest["faults"]:
        if fault["target_kind"] == "broker" and fault.get("end_ms"):
            windows.setdefault(fault["target"], []).append(
                (fault["start_ms"], fault["end_ms"] + grace_ms))
    for probe in manifest["probes"]:
        name = probe["broker"]
        start, end = probe["start_ms"], probe["end_ms"]
        if any(a <= end and start <= b for a, b in windows.get(name, [])):
            continue
        if probe["rc"] != 0 or end - start > bound_ms:
            report.fail("slow answers", "broker %s took %d ms (rc %d) at t=%.1fs "
                        "outside its own faults (bound %d ms)" % (
                            name, end - start, probe["rc"],
                            (start - manifest["t0_ms"]) / 1000.0, bound_ms))
    for crash in manifest.get("crashes", []):
        report.fail("crashes", crash)

    # doubled: markers against the broker's attempts
    for job_id, ranks in sorted(markers.items()):
        broker, job = executing(job_id)
        attempts = job["attempts"] if job else 0
        for rank, events in sorted(ranks.items()):
            starts = [e for e in events if e[0] == "start"]
            ends = [e for e in events if e[0] == "end"]
            problem = None
            if len(ends) > 1:
                problem = "ran to its end %d times" % len(ends)
            elif ends and any(e[1] > ends[0][1] for e in starts):
                problem = "started again after it had run to its end"
            elif job and len(starts) > max(attempts, 1):
                problem = "started %d times in %d placement(s)" % (
                    len(starts), attempts)
            if problem:
                report.fail("doubled", "%s rank %d %s (markers: %s; broker %s: "
                            "%s, attempts %d)" % (
                                job_id, rank, problem,
                                ", ".join("%s@%d pid %s" % e for e in events),
                                broker.name if broker else "?",
                                STATE_NAMES[job["state"]] if job else "no job",
                                attempts))
    for submitted in acked:
        broker, job = executing(submitted["job_id"])
        if not job or job["state"] != SUCCEEDED:
            continue
        ranks = markers.get(submitted["job_id"], {})
        for rank in range(submitted["nodes"]):
            if not any(e[0] == "end" for e in ranks.get(rank, [])):
                report.fail("wrong outcomes", "%s succeeded but rank %d never "
                            "ran to its end (no end marker)" % (
                                submitted["job_id"], rank))

    # ledger: the offline audit, balances, clearing
    for name in brokers:
        db = os.path.join(run_dir, name + ".db")
        identity = os.path.join(run_dir, "keys", name, "identity.pub")
        if cli:
            result = subprocess.run([cli, "ledger", "verify", db,
                                     "--broker-identity", identity],
                                    capture_output=True, text=True, timeout=300)
            text = (result.stdout + result.stderr).strip()
            if result.returncode != 0 or "ledger OK" not in text:
                report.fail("ledger failures", "ledger verify %s (exit %d): %s" % (
                    name, result.returncode, text[-500:]))
            elif verbose:
                print("ledger verify %s: %s" % (name, text.splitlines()[-1]))
    for name, broker in brokers.items():
        total = sum(balance for balance, _ in broker.accounts.values())
        if total != 0:
            report.fail("ledger failures", "%s: accounts sum to %d, not 0" % (
                name, total))
            report.counts["minor units unaccounted"] += abs(total)
        for account, (_, held) in sorted(broker.accounts.items()):
            if held != 0:
                report.fail("ledger failures", "%s: %s still holds %d with every "
                            "job ended" % (name, account, held))
        for hold in broker.holds.values():
            if hold["open"]:
                report.fail("ledger failures", "%s: hold %s (%s) is still open" % (
                    name, hold["hold_id"], hold["job_id"]))
    # billing: every charge by the rule; once per succeeded job; both sides
    charged_total = 0
    pair_diff = {}  # (a, b) sorted: home minus remote, per forwarded job
    for name, broker in brokers.items():
        by_hold = {}
        for sequence in sorted(broker.entries):
            entry = broker.entries[sequence]
            if entry["kind"] not in ("usage", "remote_usage"):
                continue
            paid = -sum(a for _, a in broker.postings.get(sequence, []) if a < 0)
            got = sum(a for _, a in broker.postings.get(sequence, []) if a > 0)
            if paid != got:
                report.fail("ledger failures", "%s entry %d does not balance" % (
                    name, sequence))
            cumulative = entry["cumulative"] or entry["billed"]
            rule = charge(cumulative, entry["price"]) - charge(
                cumulative - entry["billed"], entry["price"])
            if paid != rule:
                report.fail("ledger failures", "%s entry %d (%s %s) charged %d, "
                            "the rule says %d" % (name, sequence, entry["kind"],
                                                 entry["job_id"], paid, rule))
                report.counts["minor units unaccounted"] += abs(paid - rule)
            hold = by_hold.setdefault(entry["hold_id"] or entry["job_id"],
                                      {"billed": 0, "paid": 0,
                                       "price": entry["price"]})
            hold["billed"] += entry["billed"]
            hold["paid"] += paid
            if entry["kind"] == "usage":
                charged_total += paid
        for hold_id, hold in by_hold.items():
            expected = charge(hold["billed"], hold["price"])
            if hold["paid"] != expected:
                report.fail("ledger failures", "%s %s: %d card-seconds at %d cost "
                            "%d, charged %d" % (name, hold_id, hold["billed"],
                                               hold["price"], expected,
                                               hold["paid"]))
                report.counts["minor units unaccounted"] += abs(hold["paid"] - expected)
    for submitted in acked:
        job_id = submitted["job_id"]
        home = brokers[submitted["home"]]
        home_job = home.jobs.get(job_id)
        broker, job = executing(job_id)
        if not job or not home_job:
            continue
        records = broker.records.get(job_id, [])
        closing = [r for r in records if r["closes_job"]]
        usage = broker.charges(job_id, ("usage",))
        if job["state"] == SUCCEEDED:
            last_attempt = max([r["attempt"] for r in records] or [0])
            closing_last = [r for r in closing if r["attempt"] == last_attempt]
            if len(closing_last) != 1 or not usage:
                report.fail("billing", "%s succeeded at %s with %d closing "
                            "usage record(s) and %d charge(s)" % (
                                job_id, broker.name, len(closing_last), len(usage)))
            ranks = markers.get(job_id, {})
            ran_ms = 0
            for events in ranks.values():
                starts = [e[1] for e in events if e[0] == "start"]
                ends = [e[1] for e in events if e[0] == "end"]
                if starts and ends:
                    ran_ms = max(ran_ms, ends[-1] - starts[-1])
            per_node = submitted["cards"]
            floor = per_node * submitted["nodes"] * (ran_ms // 1000)
            if job["card_seconds"] < floor:
                report.fail("billing", "%s ran %d ms on %d card(s) but was billed "
                            "%d card-seconds" % (job_id, ran_ms,
                                                 per_node * submitted["nodes"],
                                                 job["card_seconds"]))
        paid_here = sum(p for _, p in usage)
        if job["charged"] != paid_here:
            report.fail("billing", "%s: %s shows charged %d, its ledger %d" % (
                job_id, broker.name, job["charged"], paid_here))
            report.counts["minor units unaccounted"] += abs(job["charged"] - paid_here)
        if broker is not home:
            remote = home.charges(job_id, ("remote_usage",))
            paid_home = sum(p for _, p in remote)
            if len(remote) != len(usage) or paid_home != paid_here:
                report.fail("billing", "%s: %d charge(s) of %d at home %s, %d of "
                            "%d at %s" % (job_id, len(remote), paid_home, home.name,
                                          len(usage), paid_here, broker.name))
                report.counts["minor units unaccounted"] += abs(paid_home - paid_here)
            pair = tuple(sorted((home.name, broker.name)))
            pair_diff[pair] = pair_diff.get(pair, 0) + paid_home - paid_here
            if home_job["charged"] != paid_home:
                report.fail("billing", "%s: home %s shows charged %d, its ledger "
                            "%d" % (job_id, home.name, home_job["charged"],
                                    paid_home))

    names = sorted(brokers)
    for a in names:
        for b in names:
            if a >= b:
                continue
            at_a = brokers[a].accounts.get("clearing:" + b, (0, 0))[0]
            at_b = brokers[b].accounts.get("clearing:" + a, (0, 0))[0]
            if at_a != -at_b:
                report.fail("ledger failures", "clearing %s/%s: %d at %s, %d at %s "
                            "(should be opposite)" % (a, b, at_a, a, at_b, b))
                # What the per-job comparison above did not already count.
                residual = abs(at_a + at_b - pair_diff.get((a, b), 0))
                report.counts["minor units unaccounted"] += residual


    summary = {
        "seed": manifest["seed"],
        "faults": len(manifest["faults"]),
        "jobs": len(acked),
        "unacknowledged": manifest.get("unacknowledged", 0),
        "charged_minor_units": charged_total,
    }
    summary.update(report.counts)
    return report, summary


def summary_line(summary):
    return ("chaos summary: seed %(seed)d, faults injected %(faults)d, jobs "
            "%(jobs)d (+%(unacknowledged)d unacknowledged), lost %(lost)d, "
            "doubled %(doubled)d, stuck %(stuck)d, ledger failures "
            "%(ledger failures)d, minor units unaccounted "
            "%(minor units unaccounted)d; wrong outcomes %(wrong outcomes)d, "
            "billing %(billing)d, disagreements %(disagreements)d, slow answers "
            "%(slow answers)d, crashes %(crashes)d; charged %(charged_minor_units)d"
            " minor units" % summary)


def _copy_run(run_dir, into):
    """A copy of a finished run to doctor: files as they are, broker files
    through SQLite's backup (their WAL included)."""
    import shutil
    shutil.copytree(run_dir, into, ignore=shutil.ignore_patterns(
        "*.db", "*.db-wal", "*.db-shm", "*.db.lock", "work", "logs"))
    for name in os.listdir(run_dir):
        if name.endswith(".db"):
            source = sqlite3.connect("file:%s?mode=ro" % os.path.join(run_dir, name),
                                     uri=True)
            target = sqlite3.connect(os.path.join(into, name))
            source.backup(target)
            target.close()
            source.close()


def self_test(run_dir, cli=None):
    """Doctors copies of a run that passed, one fault class each, and
    checks that the checker catches every one. Returns the failures (what
    it did not catch)."""
    import shutil
    import tempfile
    with open(os.path.join(run_dir, "manifest.json")) as f:
        manifest = json.load(f)
    markers_dir = os.path.join(run_dir, "markers")
    succeeded = None
    home = None
    for submitted in manifest["jobs"]:
        if submitted["expect"] == "succeed" and os.path.exists(
                os.path.join(markers_dir, submitted["job_id"] + ".0")):
            broker = BrokerFile(submitted["home"],
                                os.path.join(run_dir, submitted["home"] + ".db"))
            if broker.jobs[submitted["job_id"]]["state"] == SUCCEEDED:
                succeeded, home = submitted["job_id"], submitted["home"]
                break
    if succeeded is None:
        return ["self-test: the run has no succeeded job to doctor"]

    def run_twice(d):
        with open(os.path.join(d, "markers", succeeded + ".0"), "a") as f:
            f.write("start 9999999999999 1 again\nend 9999999999999 1\n")

    def lose_job(d):
        db = sqlite3.connect(os.path.join(d, home + ".db"))
        db.execute("DELETE FROM jobs WHERE job_id = ?", (succeeded,))
        db.commit()
        db.close()

    def forge_balance(d):
        db = sqlite3.connect(os.path.join(d, home + ".db"))
        db.execute("UPDATE ledger_accounts SET balance = balance + 1 WHERE "
                   "name = ?", ("consumer:user-" + home,))
        db.commit()
        db.close()

    def drop_charge(d):
        # The job's last charge vanishes from the postings, as if a usage
        # record were never billed: balances and the rule no longer meet.
        db = sqlite3.connect(os.path.join(d, home + ".db"))
        rows = [(seq, blob) for seq, blob in db.execute(
            "SELECT sequence, entry FROM ledger_entries")]
        for seq, blob in reversed(rows):
            entry = ledger_entry(blob)
            if entry["job_id"] == succeeded and entry["kind"] in (
                    "usage", "remote_usage"):
                db.execute("UPDATE ledger_postings SET amount = amount * 2 "
                           "WHERE sequence = ?", (seq,))
                break
        db.commit()
        db.close()

    def stick_job(d):
        with open(os.path.join(d, "manifest.json")) as f:
            m = json.load(f)
        m["jobs"].append({"job_id": home + "-99999999", "home": home,
                          "kind": "local", "key": "forged", "cards": 1,
                          "nodes": 1, "expect": "succeed", "acked_ms": 0})
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(m, f)

    def slow_broker(d):
        with open(os.path.join(d, "manifest.json")) as f:
            m = json.load(f)
        start = m["t0_ms"] - 100000  # before any fault
        m["probes"].append({"broker": home, "start_ms": start,
                            "end_ms": start + m["answer_bound_ms"] + 1, "rc": 0})
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(m, f)

    cases = [("a job that ran twice (marker)", run_twice, "doubled"),
             ("an acknowledged job deleted", lose_job, "lost"),
             ("a balance raised by 1", forge_balance, "ledger failures"),
             ("a charge changed", drop_charge, "ledger failures"),
             ("an acknowledged job its broker never stored", stick_job, "lost"),
             ("a broker slow outside its faults", slow_broker, "slow answers")]
    missed = []
    for what, doctor, count in cases:
        scratch = tempfile.mkdtemp(prefix="chaos-selftest-")
        try:
            copy = os.path.join(scratch, "run")
            _copy_run(run_dir, copy)
            doctor(copy)
            report, summary = check_run(copy, cli, verbose=False)
            caught = summary[count] > 0
            print("self-test: %s: %s (%d failure(s), %s %d)" % (
                what, "caught" if caught else "MISSED", len(report.failures),
                count, summary[count]), flush=True)
            if not caught:
                missed.append("self-test: the checker missed %s" % what)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return missed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--cli", help="the computenet binary (ledger verify); "
                        "default: the one the run used")
    parser.add_argument("--self-test", action="store_true",
                        help="also doctor copies of the run (a job run "
                        "twice, lost, a forged balance, ...) and fail unless "
                        "each is caught")
    args = parser.parse_args()
    report, summary = check_run(args.run_dir, args.cli)
    for failure in report.failures:
        print("FAIL " + failure)
    print(summary_line(summary))
    missed = self_test(args.run_dir, args.cli) if args.self_test else []
    for failure in missed:
        print("FAIL " + failure)
    return 1 if report.failures or missed else 0


if __name__ == "__main__":
    sys.exit(main())
