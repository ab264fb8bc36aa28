"""Fixtures: a real computenet-broker and computenet-provider, as an
operator would run them (keys made and enrolled with the shipped tools,
consumers topped up, ephemeral loopback ports), for the SDK to talk to.

The binaries come from the environment ctest sets (COMPUTENET_BROKER_BIN,
COMPUTENET_PROVIDER_BIN, COMPUTENET_CLI_BIN); the package from PYTHONPATH
(the build tree's python/ directory).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

import computenet

PROVIDER_CARDS = 4  # A800s on the one node of site-a
PRICE = 3600  # minor units per card-hour: 1 per card-second
FUNDS = 10_000_000


def _binary(name: str) -> str:
    path = os.environ.get(name)
    if not path or not os.access(path, os.X_OK):
        pytest.exit(f"{name} is not set to an executable (run through ctest)",
                    returncode=2)
    return path


@dataclass
class Network:
    dir: Path
    broker_bin: str
    cli_bin: str
    db: Path
    endpoint: str = ""
    processes: List[subprocess.Popen] = field(default_factory=list)
    clients: Dict[str, computenet.Client] = field(default_factory=dict)

    @property
    def broker_identity(self) -> str:
        return str(self.dir / "broker-keys" / "identity.pub")

    def keys(self, name: str) -> str:
        return str(self.dir / f"{name}-keys")

    def env(self, name: str) -> Dict[str, str]:
        """The environment the CLI reads, as consumer `name`."""
        env = dict(os.environ)
        env.update(COMPUTENET_BROKER=self.endpoint,
                   COMPUTENET_BROKER_IDENTITY=self.broker_identity,
                   COMPUTENET_IDENTITY=self.keys(name))
        return env

    def client(self, name: str, **options) -> computenet.Client:
        client = computenet.Client(self.endpoint, self.broker_identity,
                                   self.keys(name), **options)
        self.clients.setdefault(name, client)
        return client

    def cli(self, name: str, *args: str) -> str:
        done = subprocess.run([self.cli_bin, *args], env=self.env(name),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def flag(self, name: str) -> Path:
        """A path a job can wait for (the test creates it to let it go on)."""
        return self.dir / "flags" / name

    def wait_for_flag(self, name: str) -> List[str]:
        path = self.flag(name)
        return ["sh", "-c", f"while [ ! -f {path} ]; do sleep 0.02; done"]


def _run(argv: List[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"


@pytest.fixture(scope="session")
def net() -> Iterator[Network]:
    broker_bin = _binary("COMPUTENET_BROKER_BIN")
    provider_bin = _binary("COMPUTENET_PROVIDER_BIN")
    cli_bin = _binary("COMPUTENET_CLI_BIN")
    root = Path(tempfile.mkdtemp(prefix="computenet-py-"))
    (root / "flags").mkdir()
    network = Network(dir=root, broker_bin=broker_bin, cli_bin=cli_bin,
                      db=root / "broker.db")
    db = str(network.db)
    try:
        _run([broker_bin, "keygen", "--name", "hub", "--out",
              network.keys("broker")])
        for name in ("site-a", "site-w", "alice", "bob", "ops", "mallory"):
            _run([cli_bin, "keygen", "--name", name, "--out", network.keys(name)])
        for site in ("site-a", "site-w"):
            _run([broker_bin, "enroll", "--db", db, "--role", "provider",
                  "--identity", network.keys(site) + "/identity.pub"])
        for name in ("alice", "bob"):
            _run([broker_bin, "enroll", "--db", db, "--role", "consumer",
                  "--identity", network.keys(name) + "/identity.pub"])
            _run([broker_bin, "topup", "--db", db, "--consumer", name,
                  "--amount", str(FUNDS), "--key", f"wire-{name}"])
        # alice's organization may submit HIGH (bob's may not).
        _run([broker_bin, "priority", "--db", db, "--org", "alice",
              "--max", "high"])
        _run([broker_bin, "enroll", "--db", db, "--role", "admin",
              "--identity", network.keys("ops") + "/identity.pub"])
        # mallory has keys but is never enrolled.

        endpoint_file = root / "endpoint"
        broker_log = open(root / "broker.log", "w")
        network.processes.append(subprocess.Popen(
            [broker_bin, "run", "--db", db, "--keys", network.keys("broker"),
             "--broker-id", "hub", "--endpoint", "tcp://127.0.0.1:0",
             "--heartbeat-ms", "200", "--endpoint-file", str(endpoint_file),
             "--checkpoint-every", "1"],
            stdout=broker_log, stderr=subprocess.STDOUT))
        for _ in range(1000):
            if endpoint_file.exists() and endpoint_file.read_text().strip():
                break
            if network.processes[0].poll() is not None:
                pytest.fail("the broker exited: " +
                            (root / "broker.log").read_text())
            time.sleep(0.01)
        network.endpoint = endpoint_file.read_text().strip()

        sites = {
            # north: 4 A800 on one node (most tests run here)
            "site-a": ("north", f"A800 = {PRICE}\n", [
                ("n1", "ib", "A800", 81920, PROVIDER_CARDS)]),
            # west: a gang fabric of H800s and a node of domestic 910Bs, for
            # the request forms
            "site-w": ("west", "H800 = 2000\n910B = 900\n", [
                ("w1", "wib", "H800", 81920, 8),
                ("w2", "wib", "H800", 81920, 8),
                ("w3", "w3", "910B", 65536, 8)]),
        }
        for site, (region, prices, nodes) in sites.items():
            text = (f'broker_endpoint = "{network.endpoint}"\n'
                    'broker_identity = "broker-keys/identity.pub"\n'
                    f'identity_dir = "{site}-keys"\n'
                    f'work_dir = "work-{site}"\n'
                    f'site = "{site}"\nregion = "{region}"\ncurrency = "CNY"\n'
                    # Jobs run under the sandbox; the flags the tests
                    # create to let them go on are the one host path bound.
                    f'[sandbox]\nwritable_paths = ["{root / "flags"}"]\n'
                    f'[prices]\n{prices}')
            for node, fabric, model, memory, count in nodes:
                text += (f'[[nodes]]\nname = "{node}"\nfabric = "{fabric}"\n'
                         'cpu_cores = 64\nmemory_mib = 524288\n'
                         f'accelerators = [ {{ model = "{model}", '
                         f'memory_mib = {memory}, count = {count} }} ]\n')
            (root / f"{site}.toml").write_text(text)
            log = open(root / f"{site}.log", "w")
            network.processes.append(subprocess.Popen(
                [provider_bin, "--config", str(root / f"{site}.toml")],
                stdout=log, stderr=subprocess.STDOUT, cwd=root))
        # Jobs that no registered provider could ever hold are refused, so
        # the tests start once both sites are registered.
        for site in sites:
            log = root / f"{site}.log"
            for _ in range(3000):
                if "registered as provider" in log.read_text(errors="replace"):
                    break
                time.sleep(0.01)
            else:
                pytest.fail(f"{site} did not register: {log.read_text()}")
        yield network
    finally:
        for client in network.clients.values():
            client.close()
        for process in reversed(network.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if os.environ.get("COMPUTENET_KEEP_TEST_DIR"):
            print(f"test directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def alice(net: Network) -> computenet.Client:
    return net.client("alice")


@pytest.fixture(scope="session")
def bob(net: Network) -> computenet.Client:
    return net.client("bob")


@pytest.fixture(scope="session")
def ops(net: Network) -> computenet.Client:
    return net.client("ops")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """On a failure, attach the daemons' log tails to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    network = item.funcargs.get("net")
    if network is None:
        return
    for name in ("broker.log", "site-a.log", "site-w.log"):
        path = network.dir / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-40:]
            report.sections.append((name, "\n".join(tail)))
