#!/usr/bin/python3
"""The chaos test (issue 12): a federation of three brokers (north, east,
west), two provider sites per region and a consumer at each broker, all the
shipped binaries as child processes on loopback. Consumers submit a steady
mix of jobs (local, forwarded, region-restricted, gangs, failing ones and
cancels) while, at moments drawn from a printed seed, brokers and agents
are SIGKILLed and restarted and brokers are SIGSTOPped and continued (their
links go down). Then faults stop, the run settles for a bounded time, every
process is stopped cleanly, and check.py checks what is left: nothing lost,
stuck or run twice, the brokers agree, every ledger verifies and every
minor unit is accounted for.

  /usr/bin/python3 tests/chaos/chaos.py --build-dir build            # short
  /usr/bin/python3 tests/chaos/chaos.py --build-dir build --duration-s 1800
  ... --seed N          the same fault schedule and job mix again

The seed fixes the fault schedule (times, kinds, targets, how long each
lasts) and each consumer's sequence of jobs; the exact interleaving with
the processes' own timing is not reproducible, so a failing seed is a
strong hint, not a replay. Each fault is printed with its time. Exit 0 when
every check passes, 1 with the list of failures, 2 when the federation did
not come up at all.

Standard library only; /usr/bin/python3.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402

# region, accelerator model, sites (name, price in minor units per card-hour)
REGIONS = [
    ("north", "A800", [("north-a", 1500), ("north-b", 1700)]),
    ("east", "H800", [("east-a", 2000), ("east-b", 2400)]),
    ("west", "910B", [("west-a", 900), ("west-b", 1100)]),
]
NODES_PER_SITE = 2
CARDS_PER_NODE = 4
FEE_BPS = {"north": 0, "east": 250, "west": 100}
MAX_DURATION_S = 60

# What each consumer submits, with weights.
JOB_KINDS = [("local", 30), ("forwarded", 20), ("region", 15), ("gang", 10),
             ("cancel", 10), ("fail", 10), ("anywhere", 5)]
# Fault kinds, with weights and how long the target stays down/stopped (s).
FAULT_KINDS = [("kill_broker", 25, (0.5, 4.0)), ("stop_broker", 25, (1.0, 8.0)),
               ("kill_agent", 50, (0.2, 5.0))]


def now_ms():
    return int(time.time() * 1000)


def free_port():
    # Ephemeral ports, chosen once: a restarted broker must come back on
    # the endpoint its agents and peers dial.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One daemon: started, signalled and restarted by the run."""

    def __init__(self, name, kind, argv, log_path, cwd):
        self.name, self.kind, self.argv = name, kind, argv
        self.log_path, self.cwd = log_path, cwd
        self.popen = None
        self.expect_down = False  # killed or being stopped by us
        self.stopped = False
        self.pgids = []
        self.lock = threading.Lock()

    def start(self):
        log = open(self.log_path, "ab")
        # Its own session: the agents' job supervisors stay in it, so the
        # run can end them by group at the end (and only them).
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL, cwd=self.cwd,
                                      start_new_session=True)
        log.close()
        self.pgids.append(self.popen.pid)
        self.expect_down = False

    def signal(self, sig):
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def alive(self):
        return self.popen is not None and self.popen.poll() is None


class Run:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.bin = os.path.abspath(args.build_dir)
        self.cnb = os.path.join(self.bin, "broker", "computenet-broker")
        self.cn = os.path.join(self.bin, "cli", "computenet")
        self.agent_bin = os.path.join(self.bin, "provider-sdk", "computenet-provider")
        self.dir = args.run_dir
        self.markers = os.path.join(self.dir, "markers")
        self.procs = {}
        self.ports = {}
        self.jobs = []  # acknowledged
        self.unacknowledged = 0
        self.cancels = []
        self.faults = []
        self.probes = []
        self.crashes = []
        self.lock = threading.Lock()
        self.stop_submitting = threading.Event()
        self.stop_all = threading.Event()
        self.t0 = time.time()
        self.log_lock = threading.Lock()

    # --- output ---

    def say(self, text):
        with self.log_lock:
            print("[%7.1fs] %s" % (time.time() - self.t0, text), flush=True)

    # --- set-up ---

    def sh(self, argv, **kwargs):
        result = subprocess.run(argv, capture_output=True, text=True,
                                cwd=self.dir, timeout=60, **kwargs)
        if result.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (
                " ".join(argv), result.returncode, result.stderr.strip()))
        return result.stdout

    def set_up(self):
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        os.makedirs(self.markers, exist_ok=True)
        for region, model, sites in REGIONS:
            self.ports[region] = free_port()
            self.sh([self.cnb, "keygen", "--name", region, "--out", "keys/" + region])
            db = region + ".db"
            for site, _ in sites:
                self.sh([self.cn, "keygen", "--name", site, "--out", "keys/" + site])
                self.sh([self.cnb, "enroll", "--db", db, "--role", "provider",
                         "--identity", "keys/%s/identity.pub" % site])
            consumer = "user-" + region
            self.sh([self.cn, "keygen", "--name", consumer, "--out", "keys/" + consumer])
            self.sh([self.cnb, "enroll", "--db", db, "--role", "consumer",
                     "--identity", "keys/%s/identity.pub" % consumer])
            self.sh([self.cnb, "topup", "--db", db, "--consumer", consumer,
                     "--amount", "100000000", "--key", "chaos-topup"])
            ops = "ops-" + region
            self.sh([self.cn, "keygen", "--name", ops, "--out", "keys/" + ops])
            self.sh([self.cnb, "enroll", "--db", db, "--role", "admin",
                     "--identity", "keys/%s/identity.pub" % ops])
        for region, model, sites in REGIONS:
            lines = [
                'broker_id = "%s"' % region, 'region = "%s"' % region,
                'endpoint = "tcp://127.0.0.1:%d"' % self.ports[region],
                'database = "%s.db"' % region, 'keys = "keys/%s"' % region,
                "heartbeat_ms = 250", "liveness = 4",
                "settlement_interval_ms = 1000", "replication_interval_ms = 1000",
                "checkpoint_interval_ms = 1000", "decline_retry_ms = 1000",
                "max_decline_retry_ms = 4000", "lost_job_timeout_ms = 120000",
                "fee_bps = %d" % FEE_BPS[region],
            ]
            for peer, _, _ in REGIONS:
                if peer == region:
                    continue
                lines += ["[[peers]]", 'broker_id = "%s"' % peer,
                          'region = "%s"' % peer,
                          'endpoint = "tcp://127.0.0.1:%d"' % self.ports[peer],
                          'identity = "keys/%s/identity.pub"' % peer]
            path = os.path.join(self.dir, region + ".toml")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            self.procs[region] = Proc(
                region, "broker", [self.cnb, "run", "--config", path],
                os.path.join(self.dir, "logs", region + ".log"), self.dir)
            for site, price in sites:
                lines = [
                    'broker_endpoint = "tcp://127.0.0.1:%d"' % self.ports[region],
                    'broker_identity = "keys/%s/identity.pub"' % region,
                    'identity_dir = "keys/%s"' % site, 'work_dir = "work/%s"' % site,
                    'site = "%s"' % site, 'region = "%s"' % region,
                    'currency = "CNY"',
                    "usage_interval_s = %d" % self.args.usage_interval_s,
                    "[prices]", "%s = %d" % (model, price)]
                for n in range(NODES_PER_SITE):
                    lines += ["[[nodes]]", 'name = "%s-n%d"' % (site, n + 1),
                              'fabric = "%s-ib"' % site,
                              'accelerators = [ { model = "%s", memory_mib = 65536, '
                              'count = %d } ]' % (model, CARDS_PER_NODE)]
                # Jobs run sandboxed; they write their markers here.
                lines += ["[sandbox]", 'writable_paths = ["%s"]' % self.markers]
                path = os.path.join(self.dir, site + ".toml")
                os.makedirs(os.path.join(self.dir, "work", site), exist_ok=True)
                with open(path, "w") as f:
                    f.write("\n".join(lines) + "\n")
                self.procs[site] = Proc(
                    site, "agent", [self.agent_bin, "--config", path],
                    os.path.join(self.dir, "logs", site + ".log"), self.dir)

    def cli_env(self, region, who="user"):
        env = dict(os.environ)
        env["COMPUTENET_BROKER"] = "tcp://127.0.0.1:%d" % self.ports[region]
        env["COMPUTENET_BROKER_IDENTITY"] = os.path.join(
            self.dir, "keys", region, "identity.pub")
        env["COMPUTENET_IDENTITY"] = os.path.join(self.dir, "keys", "%s-%s" % (who, region))
        return env

    def cli(self, region, args, who="user", timeout=40):
        try:
            result = subprocess.run([self.cn] + args, capture_output=True, text=True,
                                    env=self.cli_env(region, who), timeout=timeout,
                                    cwd=self.dir)
            return result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired:
            return 124, "", "timed out"

    def start_federation(self):
        for proc in self.procs.values():
            if proc.kind == "broker":
                proc.start()
        time.sleep(0.5)
        for proc in self.procs.values():
            if proc.kind == "agent":
                proc.start()
        deadline = time.time() + 60
        pending = [r for r, _, _ in REGIONS]
        while pending and time.time() < deadline:
            for region in list(pending):
                rc, out, _ = self.cli(region, ["admin", "federation"], who="ops", timeout=20)
                if rc == 0 and out.count("link up") == 2 and all(
                        m in out for r, m, _ in REGIONS if r != region):
                    pending.remove(region)
            time.sleep(0.5)
        if pending:
            raise RuntimeError("the federation did not come up: %s" % pending)
        self.say("federation up: brokers %s on ports %s" % (
            ", ".join(r for r, _, _ in REGIONS),
            ", ".join(str(self.ports[r]) for r, _, _ in REGIONS)))

    # --- the faults ---

    def schedule_faults(self):
        rng = random.Random("faults-%d" % self.seed)
        targets = {"broker": [r for r, _, _ in REGIONS],
                   "agent": [s for _, _, sites in REGIONS for s, _ in sites]}
        busy = {}
        out = []
        t = self.args.first_fault_s
        total = sum(w for _, w, _ in FAULT_KINDS)
        while True:
            t += rng.expovariate(1.0 / self.args.mean_fault_gap_s)
            if t >= self.args.duration_s:
                break
            pick = rng.uniform(0, total)
            for kind, weight, (low, high) in FAULT_KINDS:
                pick -= weight
                if pick <= 0:
                    break
            target_kind = "broker" if kind.endswith("broker") else "agent"
            free = [x for x in targets[target_kind] if busy.get(x, 0) < t]
            if not free:
                continue
            target = rng.choice(free)
            down = rng.uniform(low, high)
            busy[target] = t + down + 1.0
            out.append({"at_s": round(t, 2), "kind": kind, "target": target,
                        "target_kind": target_kind, "down_s": round(down, 2)})
        return out

    def run_faults(self, schedule):
        timers = []
        for index, fault in enumerate(schedule):
            delay = self.t0 + fault["at_s"] - time.time()
            if self.stop_all.wait(max(0, delay)):
                break
            proc = self.procs[fault["target"]]
            record = dict(fault, index=index + 1, start_ms=now_ms(), end_ms=None)
            with self.lock:
                self.faults.append(record)
            with proc.lock:
                proc.expect_down = True
                if fault["kind"].startswith("kill"):
                    proc.signal(signal.SIGKILL)
                    what = "SIGKILL %s %s; restart in %.1fs" % (
                        fault["target_kind"], fault["target"], fault["down_s"])
                else:
                    proc.signal(signal.SIGSTOP)
                    proc.stopped = True
                    what = "SIGSTOP broker %s; SIGCONT in %.1fs" % (
                        fault["target"], fault["down_s"])
            self.say("fault #%d: %s" % (index + 1, what))

            def end(proc=proc, record=record):
                with proc.lock:
                    if record["kind"].startswith("kill"):
                        if proc.popen:
                            proc.popen.wait()
                        proc.start()
                        self.say("fault #%d over: %s restarted" % (
                            record["index"], proc.name))
                    else:
                        proc.signal(signal.SIGCONT)
                        proc.stopped = False
                        proc.expect_down = False
                        self.say("fault #%d over: SIGCONT %s" % (
                            record["index"], proc.name))
                    record["end_ms"] = now_ms()

            timer = threading.Timer(fault["down_s"], end)
            timer.start()
            timers.append(timer)
        for timer in timers:
            timer.join()

    def watch(self):
        """Processes that die by themselves are crashes: noted and
        restarted, so the run goes on."""
        while not self.stop_all.wait(0.5):
            for proc in self.procs.values():
                with proc.lock:
                    if proc.expect_down or proc.popen is None:
                        continue
                    rc = proc.popen.poll()
                    if rc is None:
                        continue
                    text = "%s %s exited by itself with %d at t=%.1fs" % (
                        proc.kind, proc.name, rc, time.time() - self.t0)
                    self.say("CRASH: " + text)
                    with self.lock:
                        self.crashes.append(text)
                    proc.start()

    # --- the load ---

    def job_spec(self, rng, region, kind):
        others = [r for r, _, _ in REGIONS if r != region]
        model_of = {r: m for r, m, _ in REGIONS}
        seconds = rng.choice([1, 1, 2, 2, 3, 4])
        cards, nodes, args, expect = rng.choice([1, 1, 2, 3, 4]), 1, [], "succeed"
        exit_code = 0
        if kind == "local":
            args = ["--model", model_of[region]]
        elif kind == "forwarded":
            args = ["--model", model_of[rng.choice(others)]]
        elif kind == "region":
            args = ["--region", rng.choice(others)]
        elif kind == "gang":
            nodes, cards = 2, rng.choice([2, 4])
            args = ["--model", model_of[rng.choice([region] + others)]]
        elif kind == "cancel":
            seconds, expect = 20, "cancel"
            args = rng.choice([["--model", model_of[region]],
                               ["--region", rng.choice(others)]])
            if self.args.local_cancels_only:
                args = ["--model", model_of[region]]  # only here: never forwarded
        elif kind == "fail":
            exit_code, expect = 3, "fail"
            args = rng.choice([["--model", model_of[region]],
                               ["--model", model_of[rng.choice(others)]]])
        # The job writes its own markers: one line when an attempt starts,
        # one when it ran to its end (before its exit code).
        marker = os.path.join(self.markers, "$COMPUTENET_JOB_ID.$COMPUTENET_NODE_RANK")
        script = ('m="%s"; echo "start $(date +%%s%%3N) $$ $COMPUTENET_NODE" >> "$m"; '
                  'sleep %d; echo "end $(date +%%s%%3N) $$" >> "$m"; exit %d'
                  % (marker, seconds, exit_code))
        args += ["--cards", str(cards), "--nodes", str(nodes),
                 "--max-duration", str(MAX_DURATION_S), "--name", kind]
        return args + ["--", "sh", "-c", script], cards, nodes, expect

    def consumer(self, index, region):
        rng = random.Random("jobs-%d-%s" % (self.seed, region))
        total = sum(w for _, w in JOB_KINDS)
        pending_cancels = []
        n = 0
        while not self.stop_submitting.is_set():
            for due, job_id in list(pending_cancels):
                if time.time() >= due:
                    pending_cancels.remove((due, job_id))
                    self.cancel(region, job_id)
            pick = rng.uniform(0, total)
            for kind, weight in JOB_KINDS:
                pick -= weight
                if pick <= 0:
                    break
            args, cards, nodes, expect = self.job_spec(rng, region, kind)
            n += 1
            key = "chaos-%d-%s-%d" % (self.seed, region, n)
            job_id = self.submit(region, args + [], key)
            if job_id:
                with self.lock:
                    self.jobs.append({"job_id": job_id, "home": region, "kind": kind,
                                      "key": key, "cards": cards, "nodes": nodes,
                                      "expect": expect, "acked_ms": now_ms()})
                if kind == "cancel":
                    pending_cancels.append((time.time() + rng.uniform(0.5, 5), job_id))
            else:
                with self.lock:
                    self.unacknowledged += 1
            self.stop_submitting.wait(rng.uniform(0.4, 1.6) * self.args.submit_gap_s)
        for _, job_id in pending_cancels:
            self.cancel(region, job_id)

    def submit(self, region, args, key):
        # A real client: the same idempotency key until it is acknowledged.
        # args has the command after "--"; the key goes before it.
        split = args.index("--")
        argv = ["submit"] + args[:split] + ["--idempotency-key", key] + args[split:]
        deadline = time.time() + 45
        while time.time() < deadline:
            rc, out, err = self.cli(region, argv)
            if rc == 0 and out.strip():
                return out.split()[0]
            if rc not in (5, 124, 1):
                self.say("submit at %s refused (%d): %s" % (region, rc, err.strip()[-200:]))
                return None
            time.sleep(0.5)
        return None

    def cancel(self, region, job_id):
        deadline = time.time() + 45
        while time.time() < deadline:
            rc, out, err = self.cli(region, ["cancel", job_id])
            # 6: it ended already (FAILED_PRECONDITION).
            if rc in (0, 6):
                with self.lock:
                    self.cancels.append({"job_id": job_id, "rc": rc, "ms": now_ms()})
                return
            time.sleep(0.5)

    def probe(self, region):
        while not self.stop_all.wait(2.0):
            start = now_ms()
            rc, _, err = self.cli(region, ["jobs", "--limit", "1"], timeout=60)
            with self.lock:
                self.probes.append({"broker": region, "start_ms": start,
                                    "end_ms": now_ms(), "rc": rc})

    # --- settling and the end ---

    def job_states(self):
        """Home states of the acknowledged jobs, read from the live files."""
        states = {}
        for region, _, _ in REGIONS:
            try:
                db = check.sqlite3.connect(
                    "file:%s?mode=ro" % os.path.join(self.dir, region + ".db"),
                    uri=True, timeout=10)
                for job_id, state in db.execute("SELECT job_id, state FROM jobs"):
                    states[(region, job_id)] = state
                db.close()
            except check.sqlite3.Error:
                return None
        return states

    def settle(self):
        deadline = time.time() + self.args.settle_s
        while time.time() < deadline:
            states = self.job_states()
            if states is not None:
                waiting = [j["job_id"] for j in self.jobs
                           if states.get((j["home"], j["job_id"])) not in check.TERMINAL]
                # Copies at the remote brokers end too.
                waiting += [job for (_, job), s in states.items()
                            if s not in check.TERMINAL]
                if not waiting:
                    self.say("settled: every job ended")
                    return True
            time.sleep(1)
        self.say("settle time over with jobs not ended")
        return False

    def wait_for_clearing(self, limit_s):
        # Usage travels ahead of a job's end, but a statement or a remote
        # usage may still be on its way: give the books a moment to meet.
        deadline = time.time() + limit_s
        while time.time() < deadline:
            try:
                balances = {}
                for region, _, _ in REGIONS:
                    db = check.sqlite3.connect(
                        "file:%s?mode=ro" % os.path.join(self.dir, region + ".db"),
                        uri=True, timeout=10)
                    balances[region] = dict(db.execute(
                        "SELECT name, balance FROM ledger_accounts WHERE "
                        "name LIKE 'clearing:%'"))
                    db.close()
                if all(balances[a].get("clearing:" + b, 0) ==
                       -balances[b].get("clearing:" + a, 0)
                       for a in balances for b in balances if a != b):
                    return
            except check.sqlite3.Error:
                pass
            time.sleep(0.5)

    def stop_everything(self):
        self.stop_all.set()
        for kind in ("agent", "broker"):
            for proc in self.procs.values():
                if proc.kind != kind:
                    continue
                with proc.lock:
                    proc.expect_down = True
                    if proc.stopped:
                        proc.signal(signal.SIGCONT)
                    proc.signal(signal.SIGTERM)
            for proc in self.procs.values():
                if proc.kind != kind or proc.popen is None:
                    continue
                try:
                    rc = proc.popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.signal(signal.SIGKILL)
                    rc = proc.popen.wait()
                    with self.lock:
                        self.crashes.append("%s %s did not stop within 30 s of "
                                            "SIGTERM" % (kind, proc.name))
                if rc != 0:
                    with self.lock:
                        self.crashes.append("%s %s exited %d after SIGTERM" % (
                            kind, proc.name, rc))

    def reap_groups(self):
        # Anything still left in the sessions the run started (job
        # supervisors of the agents): only those groups, by id.
        for proc in self.procs.values():
            for pgid in proc.pgids:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def write_manifest(self):
        manifest = {
            "seed": self.seed, "brokers": [r for r, _, _ in REGIONS],
            "cli": self.cn, "t0_ms": int(self.t0 * 1000),
            "duration_s": self.args.duration_s, "settle_s": self.args.settle_s,
            "answer_bound_ms": self.args.answer_bound_ms,
            "restart_grace_ms": self.args.restart_grace_ms,
            "jobs": self.jobs, "unacknowledged": self.unacknowledged,
            "cancels": self.cancels, "faults": self.faults, "probes": self.probes,
            "crashes": self.crashes,
        }
        with open(os.path.join(self.dir, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)

    def main(self):
        self.say("chaos run: seed %d, %ds of faults, %ds to settle, run dir %s" % (
            self.seed, self.args.duration_s, self.args.settle_s, self.dir))
        argv, skip = [], False
        for arg in sys.argv:
            if skip or arg.startswith("--run-dir"):
                skip = arg == "--run-dir"
                continue
            argv.append(arg)
        if "--seed" not in argv:
            argv += ["--seed", str(self.seed)]
        self.say("reproduce: /usr/bin/python3 " + " ".join(argv))
        self.set_up()
        try:
            self.start_federation()
        except RuntimeError as error:
            self.say(str(error))
            self.stop_everything()
            self.reap_groups()
            return 2
        schedule = self.schedule_faults()
        self.say("%d faults scheduled" % len(schedule))
        self.t0 = time.time()
        threads = [threading.Thread(target=self.watch, daemon=True)]
        threads += [threading.Thread(target=self.probe, args=(r,), daemon=True)
                    for r, _, _ in REGIONS]
        consumers = [threading.Thread(target=self.consumer, args=(i, r))
                     for i, (r, _, _) in enumerate(REGIONS)]
        for thread in threads + consumers:
            thread.start()
        self.run_faults(schedule)
        remaining = self.t0 + self.args.duration_s - time.time()
        if remaining > 0:
            time.sleep(remaining)
        self.stop_submitting.set()
        for thread in consumers:
            thread.join()
        self.say("faults and submissions over: %d jobs acknowledged (%d not), %d "
                 "faults" % (len(self.jobs), self.unacknowledged, len(self.faults)))
        settled = self.settle()
        if settled:
            self.wait_for_clearing(15)
        self.stop_everything()
        self.reap_groups()
        self.write_manifest()
        report, summary = check.check_run(self.dir, self.cn)
        for failure in report.failures:
            print("FAIL " + failure, flush=True)
        print(check.summary_line(summary), flush=True)
        if report.failures:
            print("FAILED: %d check(s); reproduce with --seed %d; logs in %s" % (
                len(report.failures), self.seed, self.dir), flush=True)
            return 1
        if self.args.self_test:
            # The checker must be able to fail: doctored copies of this run
            # (a job run twice, one lost, a forged balance, ...) each fail.
            missed = check.self_test(self.dir, self.cn)
            for failure in missed:
                print("FAIL " + failure, flush=True)
            if missed:
                return 1
        print("PASSED", flush=True)
        return 0


def main():
    parser = argparse.ArgumentParser(
        description="ComputeNet chaos test: random faults in a live federation")
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--seed", type=int, default=None,
                        help="default: a random one, printed")
    parser.add_argument("--duration-s", type=int, default=90,
                        help="how long faults are injected and jobs submitted")
    parser.add_argument("--settle-s", type=int, default=120,
                        help="after that, how long every job has to end")
    parser.add_argument("--mean-fault-gap-s", type=float, default=4.0)
    parser.add_argument("--first-fault-s", type=float, default=3.0)
    parser.add_argument("--submit-gap-s", type=float, default=1.0,
                        help="mean pause between one consumer's submits")
    parser.add_argument("--answer-bound-ms", type=int, default=10000,
                        help="a broker must answer a probe within this, "
                        "outside its own faults")
    parser.add_argument("--restart-grace-ms", type=int, default=5000,
                        help="after a broker's fault ends, how long its "
                        "answers are not held against it")
    parser.add_argument("--usage-interval-s", type=int, default=1,
                        help="the agents' interim usage records (0 = only "
                        "each job's last)")
    parser.add_argument("--local-cancels-only", action="store_true",
                        help="cancel only jobs that run at home (the short "
                        "form: a known bug undercharges cancelled forwards)")
    parser.add_argument("--run-dir", default=None,
                        help="default: a new temporary directory")
    parser.add_argument("--self-test", action="store_true",
                        help="after a run that passed, check that the checker "
                        "catches doctored copies of it")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run directory even if the run passed")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2 ** 31)
    created = args.run_dir is None
    if created:
        args.run_dir = tempfile.mkdtemp(prefix="computenet-chaos-%d-" % args.seed)
    else:
        os.makedirs(args.run_dir, exist_ok=True)
    args.run_dir = os.path.abspath(args.run_dir)
    run = Run(args)
    try:
        code = run.main()
    except BaseException:
        run.stop_all.set()
        run.stop_submitting.set()
        for proc in run.procs.values():
            if proc.stopped:
                proc.signal(signal.SIGCONT)
        run.reap_groups()
        raise
    if code == 0 and created and not args.keep:
        shutil.rmtree(args.run_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
