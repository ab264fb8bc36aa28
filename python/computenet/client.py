"""Client and Job: the consumer's side of ComputeNet, in Python.

Thread safety: a :class:`Client` may be shared by any number of threads.
The C++ client beneath is not thread-safe, so each thread that uses a
Client gets its own connection to the broker (made on its first call, and
after a ``fork``), and each :meth:`Job.events` iterator its own as well;
no lock is shared between threads, so one thread's long ``wait`` never
holds up another's calls. Every blocking call releases the GIL.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import threading
import time
import weakref
from pathlib import Path
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Tuple, Union)

from . import _core
from .errors import DeadlineExceeded, FailedPrecondition, InvalidArgument
from .types import (CapacityEntry, JobInfo, JobSpec, JobState, LogChunk, Statement)

__all__ = ["Client", "Job", "default_config_path"]

# How long one blocking step of wait()/events() may take before control
# returns to Python (so Ctrl-C and the timeout are seen promptly).
_STEP_MS = 1000

TimeLike = Union[int, float, str, _dt.datetime, _dt.date]


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/computenet/config.toml`` (``~/.config/...``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
        os.path.expanduser("~"), ".config")
    return Path(base) / "computenet" / "config.toml"


def _to_ms(value: Optional[TimeLike], what: str) -> int:
    """ms since the epoch from ms, a datetime/date (UTC if naive) or ISO text."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: want a time, not a bool")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(
                f"{what}: {value!r} is not ms since the epoch or an ISO date "
                "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)") from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, _dt.date):
        return int(_dt.datetime(value.year, value.month, value.day,
                                tzinfo=_dt.timezone.utc).timestamp() * 1000)
    raise InvalidArgument(f"{what}: want ms, a datetime, a date or ISO text")


def _read_config(path: Path) -> Dict[str, Any]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise InvalidArgument(
                f"reading {path} needs Python 3.11 (tomllib) or tomli") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"{path}: {e}") from None
    known = {"broker", "broker_identity", "identity", "request_timeout",
             "retries"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidArgument(f"{path}: unknown keys {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")
    # Paths in the file are relative to the file.
    for key in ("broker_identity", "identity"):
        if key in data:
            data[key] = str((path.parent / os.path.expanduser(
                str(data[key]))).resolve())
    return data


class Client:
    """A connection to the consumer's home broker.

    Args:
        endpoint: the broker, e.g. ``"tcp://broker:7700"``.
        broker_identity: path of the broker's ``identity.pub`` (its CURVE
            key for the connection, its Ed25519 key to check statements).
        identity: your key directory (``computenet keygen --out DIR``).
        request_timeout: seconds to wait for each reply (default 5).
        retries: extra attempts after a timeout, each on a fresh
            connection (default 2); then :class:`~computenet.Unavailable`.

    The same three settings as the CLI's ``--broker``, ``--broker-identity``
    and ``--identity``; :meth:`from_config` reads them from the environment
    (``COMPUTENET_BROKER``, ``COMPUTENET_BROKER_IDENTITY``,
    ``COMPUTENET_IDENTITY``) and a config file.

    Raises InvalidArgument for a missing setting or a bad key file,
    NotFound for a missing one. An unreachable broker, or one that refuses
    the key, shows up as Unavailable on the first request.

    Thread-safe; see the module's documentation. Use as a context manager
    or call :meth:`close` to close every thread's connection.
    """

    def __init__(self, endpoint: str, broker_identity: Union[str, os.PathLike],
                 identity: Union[str, os.PathLike], *,
                 request_timeout: float = 5.0, retries: int = 2) -> None:
        missing = [name for name, value in (("endpoint", endpoint),
                                            ("broker_identity", broker_identity),
                                            ("identity", identity))
                   if not value]
        if missing:
            raise InvalidArgument(
                f"Client needs {', '.join(missing)} (or use "
                "Client.from_config(): COMPUTENET_BROKER, "
                "COMPUTENET_BROKER_IDENTITY, COMPUTENET_IDENTITY, "
                f"{default_config_path()})")
        if request_timeout <= 0 or retries < 0:
            raise InvalidArgument("request_timeout must be > 0, retries >= 0")
        self.endpoint = str(endpoint)
        self.broker_identity = os.fspath(broker_identity)
        self.identity = os.fspath(identity)
        self.request_timeout = float(request_timeout)
        self.retries = int(retries)
        self._local = threading.local()
        self._lock = threading.Lock()  # guards _connections and _closed only
        self._connections: "weakref.WeakSet[_core.Connection]" = weakref.WeakSet()
        self._closed = False
        # Connect once here so that bad settings fail at construction.
        self.name = self._connection().name

    @classmethod
    def from_config(cls, path: Union[str, os.PathLike, None] = None,
                    **overrides: Any) -> "Client":
        """A Client from the environment and a config file.

        Each setting comes from, first to last: ``overrides`` (the
        constructor's keyword arguments), the environment variables the CLI
        reads (``COMPUTENET_BROKER``, ``COMPUTENET_BROKER_IDENTITY``,
        ``COMPUTENET_IDENTITY``), then the TOML file at ``path``
        (``$COMPUTENET_CONFIG``, else ``~/.config/computenet/config.toml``;
        a missing default file is fine)::

            broker = "tcp://broker:7700"
            broker_identity = "broker.pub"   # relative to the file
            identity = "keys/alice"
            request_timeout = 5.0            # optional
            retries = 2                      # optional
        """
        explicit = path is not None or "COMPUTENET_CONFIG" in os.environ
        config_path = Path(path if path is not None else
                           os.environ.get("COMPUTENET_CONFIG") or
                           default_config_path()).expanduser()
        settings: Dict[str, Any] = {}
        if config_path.is_file():
            settings.update(_read_config(config_path))
        elif explicit:
            raise InvalidArgument(f"no config file {config_path}")
        for key, env in (("broker", "COMPUTENET_BROKER"),
                         ("broker_identity", "COMPUTENET_BROKER_IDENTITY"),
                         ("identity", "COMPUTENET_IDENTITY")):
            if os.environ.get(env):
                settings[key] = os.environ[env]
        if "broker" in settings:
            settings["endpoint"] = settings.pop("broker")
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(settings.pop("endpoint", ""),
                   settings.pop("broker_identity", ""),
                   settings.pop("identity", ""), **settings)

    # --- connections ------------------------------------------------------

    def _new_connection(self) -> "_core.Connection":
        with self._lock:
            if self._closed:
                raise FailedPrecondition("the client is closed")
        connection = _core.Connection(self.endpoint, self.broker_identity,
                                      self.identity,
                                      int(self.request_timeout * 1000),
                                      self.retries)
        with self._lock:
            self._connections.add(connection)
        return connection

    def _connection(self) -> "_core.Connection":
        """This thread's connection (a new one after a fork)."""
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid() or connection.closed:
            connection = self._new_connection()
            local.connection = connection
            local.pid = os.getpid()
        return connection

    def close(self) -> None:
        """Closes every thread's connection; later calls raise
        FailedPrecondition."""
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        for connection in connections:
            connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(endpoint={self.endpoint!r}, name={self.name!r})"

    # --- jobs -------------------------------------------------------------

    def submit(self, spec: Optional[JobSpec] = None, /, *,
               idempotency_key: str = "",
               inputs: Iterable[Union[str, "os.PathLike[str]"]] = (),
               **forms: Any) -> "Job":
        """Submits a job; returns its :class:`Job` handle.

        Give a :class:`JobSpec`, or its fields as keyword arguments, or both
        (the keywords replace the spec's fields)::

            job = client.submit(command=["python", "train.py"],
                                models=["A800|H800"], cards=2,
                                max_duration_s=3600,
                                max_price_per_card_hour=2000)
            job = client.submit(JobSpec(["./infer.sh"], gpu_milli=500,
                                        preemptible=True, priority="low"))

        Request forms (see :class:`JobSpec` for each field): ``models``,
        ``cards`` x ``nodes`` (gangs), ``a100_equivalents``, ``gpu_milli``,
        ``min_memory_mib``, ``vendor_classes``, ``cpu_milli_per_card``,
        ``host_memory_mib_per_card``, ``regions`` (strict),
        ``preferred_regions``, ``excluded_providers``, ``max_duration_s``,
        ``max_price_per_card_hour``, ``max_price_per_a100_hour``,
        ``preemptible``, ``priority``, ``max_attempts``, ``env``,
        ``secret_env``, ``name``.

        ``inputs``: files or directories uploaded first (one bundle; only to
        the brokers of the job's ``regions``) and unpacked into the job's
        working directory, each under its own name; ``job.fetch(dir)``
        brings back what the job left in ``$COMPUTENET_OUTPUT_DIR``.

        A retried submit carries the same idempotency key, so it never makes
        a second job; give your own ``idempotency_key`` to make resubmitting
        safe across processes too (the same key returns the first job, with
        ``job.duplicate`` True).

        Raises:
            InvalidArgument: a malformed or impossible spec (the broker's
                message says which field).
            TypeError: an unknown keyword.
            Unavailable: no reply from the broker.
        """
        if spec is None:
            if "command" not in forms:
                raise InvalidArgument("submit needs a JobSpec or command=[...]")
            spec = JobSpec(**forms)
        elif forms:
            spec = dataclasses.replace(spec, **forms)
        fields = spec.to_proto_fields()
        paths = [os.fspath(path) for path in inputs]
        if paths:
            uploaded = self._connection().upload_inputs(
                paths, list(fields.get("allowed_regions", [])))
            fields["inputs"] = [uploaded]
        reply = self._connection().submit(fields, idempotency_key)
        return Job(self, reply["job_id"],
                   submitted_state=JobState.parse(reply["state"]),
                   duplicate=reply["duplicate"])

    def job(self, job_id: str) -> "Job":
        """A handle on an existing job (no request is made)."""
        return Job(self, job_id)

    def jobs(self, state: Union[JobState, str, Iterable[Union[JobState, str]],
                                None] = None, *, limit: int = 100) -> List[JobInfo]:
        """The caller's jobs, newest first, optionally only in ``state``
        (one state or several)."""
        if state is None:
            states: List[str] = []
        elif isinstance(state, (JobState, str)):
            states = [JobState.parse(state)._proto]
        else:
            states = [JobState.parse(s)._proto for s in state]
        return [JobInfo._from_proto(d)
                for d in self._connection().list_jobs(limit, states)]

    # --- money and capacity -------------------------------------------------

    def statement(self, since: Optional[TimeLike] = None,
                  until: Optional[TimeLike] = None, *,
                  account: str = "") -> Statement:
        """Your ledger lines created in [since, until), every line verified.

        ``since``/``until``: ms since the epoch, a datetime (naive = UTC), a
        date, or ISO text (``"2025-01-31"``, ``"2025-01-31T08:00:00Z"``);
        None = open. ``account``: admins only, any account (e.g.
        ``"provider:site-a"``). Raises Unauthenticated if a signature or
        proof does not check, PermissionDenied for another party's account.
        """
        data = self._connection().statement(account, _to_ms(since, "since"),
                                            _to_ms(until, "until"))
        return Statement._from_core(data)

    def capacity(self) -> List[CapacityEntry]:
        """The capacity the broker's peer regions advertise, per model.

        This is the federation view (``computenet admin federation``): it
        needs an admin key (PermissionDenied otherwise) and lists what
        peers advertise, not the home broker's own providers; the protocol
        has no consumer-facing capacity request yet.
        """
        view = self._connection().federation_status()
        out: List[CapacityEntry] = []
        for peer in view["peers"]:
            for entry in peer["adverts"]:
                out.append(CapacityEntry(
                    broker=peer["broker_id"], region=peer["region"],
                    model=entry["model"], vendor_class=entry["vendor_class"],
                    free_cards=entry["free_cards"],
                    largest_node_cards=entry["largest_node_cards"],
                    gangs=tuple((g["cards_per_node"], g["nodes"])
                                for g in entry["gangs"]),
                    lowest_price=entry["lowest_price"],
                    currency=entry["currency"],
                    reliability_bp=entry["reliability_bp"],
                    link_up=peer["link_up"]))
        return out


class Job:
    """A handle on one job. Cheap; holds no connection of its own.

    Attributes:
        id: the job id (``"<broker id>-<sequence>"``).
        submitted_state: the state the submit reply gave (None if the handle
            was made with :meth:`Client.job`).
        duplicate: the submit's idempotency key was seen before and this is
            the first job it made.
    """

    def __init__(self, client: Client, job_id: str, *,
                 submitted_state: Optional[JobState] = None,
                 duplicate: bool = False) -> None:
        self.client = client
        self.id = job_id
        self.submitted_state = submitted_state
        self.duplicate = duplicate

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def status(self) -> JobInfo:
        """The job now. NotFound if there is none or it is not yours."""
        return JobInfo._from_proto(self.client._connection().get_job(self.id))

    def fetch(self, out_dir: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
        """Downloads the job's result (its output directory) into
        ``out_dir``, after checking it against the provider-signed usage
        record; returns ``{"digest", "size", "provider"}``.
        FailedPrecondition while it has no result; DataLoss on a mismatch
        (nothing is unpacked then); Unavailable if the site is offline."""
        return self.client._connection().fetch_result(self.id, os.fspath(out_dir))

    def cancel(self) -> JobState:
        """Asks the broker to cancel; returns the state then (CANCELLED at
        once if it was queued). FailedPrecondition if it already ended."""
        reply = self.client._connection().cancel(self.id)
        return JobState.parse(reply["state"])

    def wait(self, timeout: Optional[float] = None) -> JobInfo:
        """Blocks until the job ends and returns it (check ``.state`` or
        ``.succeeded``: a failed job is returned, not raised).

        ``timeout`` in seconds (None = no limit): DeadlineExceeded after
        it, and the job goes on. The GIL is released while it blocks.
        """
        last: Optional[JobInfo] = None
        for last in self._follow(self.client._connection(), timeout):
            pass
        assert last is not None
        return last

    def events(self, timeout: Optional[float] = None) -> Iterator[JobInfo]:
        """Yields the job each time its state changes, in order, from the
        broker's event stream: first the job as it is now, last the
        terminal state. ``timeout`` as for :meth:`wait`.

        The iterator has its own connection (closed when it ends or is
        closed), so it may be advanced from any one thread at a time
        alongside other calls. Releases the GIL while it blocks.
        """
        connection = self.client._new_connection()
        try:
            yield from self._follow(connection, timeout)
        finally:
            connection.close()

    def logs(self, *, follow: bool = False, node: Optional[str] = None,
             stream: Optional[str] = None, tail: int = 0,
             timeout: Optional[float] = None,
             poll: float = 0.2) -> Iterator[LogChunk]:
        """Yields the job's output as its home broker holds it (stdout and
        stderr of every node, live while it runs): :class:`LogChunk` s, in
        order per stream. ``follow``: keep reading until the job ended and
        every stream was read to its end (``computenet logs -f``). ``node``:
        one node of a gang; ``stream``: ``"stdout"`` or ``"stderr"``;
        ``tail``: start each stream at its last N lines. ``timeout`` (s,
        with follow): DeadlineExceeded after it. NotFound if the job is not
        yours. Its own connection, as :meth:`events`.
        """
        streams = {None: "LOG_STREAM_UNSPECIFIED", "stdout": "LOG_STREAM_STDOUT",
                   "stderr": "LOG_STREAM_STDERR"}
        if stream not in streams:
            raise InvalidArgument(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        cursors: Dict[Tuple[str, str], int] = {}
        connection = self.client._new_connection()
        try:
            while True:
                reply = connection.get_logs(
                    self.id, node or "", streams[stream],
                    [(n, s, o) for (n, s), o in cursors.items()], tail)
                for chunk in reply["chunks"]:
                    cursors[(chunk["node"], chunk["stream"])] = (
                        chunk["offset"] + len(chunk["data"]))
                    yield LogChunk._from_proto(chunk)
                if reply["more"]:
                    continue
                if not follow or reply["complete"]:
                    return
                tail = 0  # streams seen later are read from their start
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineExceeded(f"logs of {self.id}: still running after "
                                           f"{timeout} s")
                time.sleep(poll)
        finally:
            connection.close()

    def _follow(self, connection: "_core.Connection",
                timeout: Optional[float]) -> Iterator[JobInfo]:
        """The job now, then each state change until it ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        current = connection.watch_job(self.id)
        job = JobInfo._from_proto(current)
        yield job
        while not job.terminal:
            step = _STEP_MS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(
                        f"job {self.id} still {job.state.value} after "
                        f"{timeout} s")
                step = max(1, min(step, int(remaining * 1000)))
            changed = connection.next_change(self.id, current["state"], step)
            if changed is None:
                continue
            current = changed
            job = JobInfo._from_proto(current)
            yield job
