"""The values the SDK sends and returns: job specs, job states, statements.

They mirror ``proto/computenet/v1/job.proto`` and ``ledger.proto`` with
Python names; money is integer minor units (e.g. fen), as on the wire.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union, overload)

from . import _core
from .errors import InvalidArgument

__all__ = [
    "JobState",
    "Priority",
    "JobSpec",
    "NodeAssignment",
    "JobInfo",
    "StatementLine",
    "Statement",
    "CapacityEntry",
]


class JobState(str, enum.Enum):
    """Where a job is in its life (docs/protocol.md)."""

    UNSPECIFIED = "unspecified"
    QUEUED = "queued"        # accepted and durable; waiting for capacity
    PLACED = "placed"        # offered to a provider; not yet running
    RUNNING = "running"      # the provider started it
    SUCCEEDED = "succeeded"  # terminal: exit code 0
    FAILED = "failed"        # terminal: non-zero exit, provider loss, ...
    CANCELLED = "cancelled"  # terminal: cancelled by its consumer

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED, FAILED and CANCELLED."""
        return self in (JobState.SUCCEEDED, JobState.FAILED,
                        JobState.CANCELLED)

    @classmethod
    def parse(cls, value: Union["JobState", str]) -> "JobState":
        """A JobState from itself, "running", "RUNNING" or "JOB_STATE_RUNNING"."""
        if isinstance(value, JobState):
            return value
        text = str(value).lower()
        if text.startswith("job_state_"):
            text = text[len("job_state_"):]
        try:
            return cls(text)
        except ValueError:
            raise InvalidArgument(f"no job state {value!r}") from None

    @property
    def _proto(self) -> str:
        return "JOB_STATE_" + self.name

    def __str__(self) -> str:
        return self.value


class Priority(str, enum.Enum):
    """Queue priority class (strict between classes, with aging)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    def __str__(self) -> str:
        return self.value


def _milli_text(value: Union[int, float, str, Decimal]) -> str:
    if isinstance(value, bool):
        raise InvalidArgument("a100_equivalents: want a number, not a bool")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _names(values: Union[str, Sequence[str]], what: str) -> List[str]:
    if isinstance(values, str):
        values = [values]
    return list(_core.parse_alternatives(list(values), what))


@dataclass
class JobSpec:
    """What to run and on what: every request form of docs/matching.md.

    Exactly one shape: whole cards (``cards`` per node on ``nodes`` nodes; a
    gang stays inside one provider fabric), a fractional card
    (``gpu_milli`` 1..999 of one card), or compute equivalence
    (``a100_equivalents``: cards of one model at one provider adding up to
    at least that many A100s). Lists of names accept ``"A800|H800"``
    alternatives, as the CLI does.

    Args:
        command: argv; ``command[0]`` is looked up in PATH on the provider.
            For a shell line use ``["sh", "-c", line]``.
        name: free text for people (<= 128 bytes).
        env: extra environment for the command.
        secret_env: environment values that reach only the job's process:
            never stored in plaintext; the broker shows the names with
            ``"***"`` (docs/security.md, "Secret env").
        models: accelerator models, any of them; empty = any model.
        cards: cards per node. Default 1; 0 with ``a100_equivalents``.
        nodes: nodes of a gang (one fabric). Default 1.
        a100_equivalents: compute equivalence, e.g. ``8`` or ``"2.5"``
            (at most three decimals; sent as thousandths).
        gpu_milli: a share of one card in thousandths (500 = half a card).
        min_memory_mib: accelerator memory per card at least this.
        vendor_classes: e.g. ``["domestic"]`` or ``["nvidia"]``.
        cpu_milli_per_card: host CPU per card, 1000 = one core.
        host_memory_mib_per_card: host memory per card.
        regions: data residency: only providers in these regions (strict).
        preferred_regions: tried first; any placement here beats elsewhere.
        excluded_providers: never these providers.
        max_duration_s: hard limit; the provider stops the job after it.
        max_price_per_card_hour: ceiling, minor units; 0 = none.
        max_price_per_a100_hour: ceiling per A100-equivalent-hour; 0 = none.
        preemptible: may run on reclaimable spare capacity (cheaper) and be
            stopped and requeued when the provider reclaims it.
        priority: ``"low"``, ``"normal"`` or ``"high"`` (None = normal).
        max_attempts: placements before the job fails; 0 = broker default.
    """

    command: Sequence[str]
    name: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict)
    models: Sequence[str] = ()
    cards: Optional[int] = None
    nodes: int = 1
    a100_equivalents: Optional[Union[int, float, str, Decimal]] = None
    gpu_milli: int = 0
    min_memory_mib: int = 0
    vendor_classes: Sequence[str] = ()
    cpu_milli_per_card: int = 0
    host_memory_mib_per_card: int = 0
    regions: Sequence[str] = ()
    preferred_regions: Sequence[str] = ()
    excluded_providers: Sequence[str] = ()
    max_duration_s: int = 3600
    max_price_per_card_hour: int = 0
    max_price_per_a100_hour: int = 0
    preemptible: bool = False
    priority: Optional[Union[Priority, str]] = None
    max_attempts: int = 0

    def to_proto_fields(self) -> Dict[str, Any]:
        """The spec as computenet.v1.JobSpec fields (the CLI's rules).

        Raises InvalidArgument for a malformed form (an empty model name,
        more than three decimals, an unknown priority).
        """
        if isinstance(self.command, str):
            raise InvalidArgument(
                "command is argv, a list of strings; for a shell line use "
                "['sh', '-c', line]")
        fields: Dict[str, Any] = {
            "name": self.name,
            "command": [str(arg) for arg in self.command],
            "env": {str(k): str(v) for k, v in dict(self.env).items()},
            "secret_env": {str(k): str(v)
                           for k, v in dict(self.secret_env).items()},
            "accelerator_models": _names(self.models, "models"),
            "vendor_classes": _names(self.vendor_classes, "vendor_classes"),
            "allowed_regions": _names(self.regions, "regions"),
            "preferred_regions": _names(self.preferred_regions,
                                        "preferred_regions"),
            "excluded_providers": _names(self.excluded_providers,
                                         "excluded_providers"),
            "gpu_milli": self.gpu_milli,
            "min_memory_mib": self.min_memory_mib,
            "cpu_milli_per_card": self.cpu_milli_per_card,
            "host_memory_mib_per_card": self.host_memory_mib_per_card,
            "max_duration_s": self.max_duration_s,
            "max_price_per_card_hour": self.max_price_per_card_hour,
            "max_price_per_a100_hour": self.max_price_per_a100_hour,
            "preemptible": self.preemptible,
            "max_attempts": self.max_attempts,
        }
        cards = self.cards
        nodes = self.nodes
        if self.a100_equivalents is not None:
            fields["a100_equivalents_milli"] = _core.parse_milli(
                _milli_text(self.a100_equivalents), "a100_equivalents",
                100_000_000)
            # The broker chooses the cards; cards is for whole-card requests.
            if cards is None:
                cards = 0
            nodes = 0
        if cards is None:
            cards = 1
        fields["cards_per_node"] = cards
        fields["nodes"] = nodes
        if self.priority is not None:
            fields["priority"] = _core.parse_priority(str(self.priority))
        return fields

    @classmethod
    def from_proto_fields(cls, d: Mapping[str, Any]) -> "JobSpec":
        """The spec as the broker holds it (JobInfo.spec)."""
        milli = d.get("a100_equivalents_milli", 0)
        priority = d.get("priority", "PRIORITY_CLASS_UNSPECIFIED")
        return cls(
            command=list(d.get("command", [])),
            name=d.get("name", ""),
            env=dict(d.get("env", {})),
            secret_env=dict(d.get("secret_env", {})),
            models=list(d.get("accelerator_models", [])),
            cards=d.get("cards_per_node", 0),
            nodes=d.get("nodes", 0),
            a100_equivalents=(Decimal(milli) / 1000) if milli else None,
            gpu_milli=d.get("gpu_milli", 0),
            min_memory_mib=d.get("min_memory_mib", 0),
            vendor_classes=list(d.get("vendor_classes", [])),
            cpu_milli_per_card=d.get("cpu_milli_per_card", 0),
            host_memory_mib_per_card=d.get("host_memory_mib_per_card", 0),
            regions=list(d.get("allowed_regions", [])),
            preferred_regions=list(d.get("preferred_regions", [])),
            excluded_providers=list(d.get("excluded_providers", [])),
            max_duration_s=d.get("max_duration_s", 0),
            max_price_per_card_hour=d.get("max_price_per_card_hour", 0),
            max_price_per_a100_hour=d.get("max_price_per_a100_hour", 0),
            preemptible=d.get("preemptible", False),
            priority=(None if priority == "PRIORITY_CLASS_UNSPECIFIED" else
                      Priority(priority[len("PRIORITY_CLASS_"):].lower())),
            max_attempts=d.get("max_attempts", 0),
        )


@dataclass(frozen=True)
class NodeAssignment:
    """The cards of one node given to a job."""

    node: str
    device_indices: Tuple[int, ...]  # as CUDA sees them on that node
    milli: int = 0  # thousandths of each card held; 0 = whole cards


def _time(ms: int) -> Optional[_dt.datetime]:
    if not ms:
        return None
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)


@dataclass(frozen=True)
class JobInfo:
    """The broker's view of one job (computenet.v1.JobInfo)."""

    job_id: str
    state: JobState
    spec: JobSpec
    consumer: str = ""
    provider: str = ""
    model: str = ""
    assignments: Tuple[NodeAssignment, ...] = ()
    price_per_card_hour: int = 0  # minor units, fixed at placement
    currency: str = ""
    exit_code: int = 0
    reason: str = ""  # why it waits, failed or was cancelled
    created_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0
    card_seconds: int = 0  # metered
    charged: int = 0  # minor units posted to the ledger
    attempts: int = 0
    cancel_requested: bool = False
    organization: str = ""
    spare: bool = False
    preemption_requested: bool = False
    preemptions: int = 0
    a100_equivalents_milli: int = 0
    compute_source: str = ""
    remote_broker: str = ""
    home_broker: str = ""
    region: str = ""
    in_doubt: bool = False
    path: Tuple[str, ...] = ()
    home_budget: int = 0
    # The last lines of its stderr, kept when it ended (live logs).
    stderr_tail: str = ""

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.SUCCEEDED

    @property
    def created(self) -> Optional[_dt.datetime]:
        return _time(self.created_ms)

    @property
    def started(self) -> Optional[_dt.datetime]:
        return _time(self.started_ms)

    @property
    def finished(self) -> Optional[_dt.datetime]:
        return _time(self.finished_ms)

    @classmethod
    def _from_proto(cls, d: Mapping[str, Any]) -> "JobInfo":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["state"] = JobState.parse(d.get("state", "JOB_STATE_UNSPECIFIED"))
        values["spec"] = JobSpec.from_proto_fields(d.get("spec") or {})
        values["assignments"] = tuple(
            NodeAssignment(a["node"], tuple(a["device_indices"]), a["milli"])
            for a in d.get("assignments", []))
        values["path"] = tuple(d.get("path", []))
        return cls(**values)


@dataclass(frozen=True)
class LogChunk:
    """Bytes of one node's stdout or stderr (computenet.v1.LogChunk), from
    :meth:`Job.logs`. ``skipped``: bytes before ``offset`` the broker no
    longer held (the job printed more than it keeps)."""

    node: str
    stream: str  # "stdout" or "stderr"
    offset: int
    data: bytes
    skipped: int = 0
    eof: bool = False

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @classmethod
    def _from_proto(cls, d: Mapping[str, Any]) -> "LogChunk":
        stream = "stderr" if d.get("stream") == "LOG_STREAM_STDERR" else "stdout"
        return cls(d["node"], stream, d["offset"], d["data"], d.get("skipped", 0),
                   d.get("eof", False))


@dataclass(frozen=True)
class StatementLine:
    """One ledger line as the account's owner sees it, proof checked."""

    sequence: int
    time: _dt.datetime
    kind: str  # "topup", "hold", "usage", "void", "credit_limit", ...
    job_id: str
    amount: int  # the account's postings, minor units (+ in, - out)
    held_change: int  # reserved (+) or no longer reserved (-)
    detail: str
    created_ms: int = 0
    entry: bytes = b""  # the LedgerEntry bytes as the broker signed them


_COLUMNS = ("sequence", "time", "kind", "job_id", "amount", "held_change",
            "detail")


class Statement(Sequence[StatementLine]):
    """The caller's ledger lines for a period, each verified.

    Every page's checkpoint signature was checked with the broker's Ed25519
    key (from its identity.pub) and every line's Merkle inclusion proof
    against it, by the same C++ code as ``computenet statement``.

    It is a sequence of :class:`StatementLine`; :meth:`rows` gives plain
    tuples (for csv), :meth:`to_dataframe` a pandas DataFrame.
    """

    columns: Tuple[str, ...] = _COLUMNS

    def __init__(self, account: str, broker_id: str, net_amount: int,
                 held_change: int, lines: Sequence[StatementLine],
                 checkpoint_tree_size: int = 0,
                 checkpoint_root_hash: str = "") -> None:
        self.account = account
        self.broker_id = broker_id
        self.net_amount = net_amount  # sum of the lines' amounts
        self.held_change = held_change
        self.checkpoint_tree_size = checkpoint_tree_size
        self.checkpoint_root_hash = checkpoint_root_hash
        self.verified = True
        self._lines = list(lines)

    @overload
    def __getitem__(self, index: int) -> StatementLine: ...
    @overload
    def __getitem__(self, index: slice) -> List[StatementLine]: ...

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._lines[index]

    def __len__(self) -> int:
        return len(self._lines)

    def __iter__(self) -> Iterator[StatementLine]:
        return iter(self._lines)

    def __repr__(self) -> str:
        return (f"Statement(account={self.account!r}, lines={len(self)}, "
                f"net_amount={self.net_amount})")

    def rows(self) -> List[Tuple[Any, ...]]:
        """One tuple per line, in the order of :attr:`columns`."""
        return [(line.sequence, line.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 line.kind, line.job_id, line.amount, line.held_change,
                 line.detail) for line in self._lines]

    def to_dataframe(self) -> Any:
        """The lines as a pandas DataFrame (needs pandas installed)."""
        try:
            import pandas  # type: ignore[import-not-found]
        except ImportError:
            raise ImportError(
                "Statement.to_dataframe needs pandas (Debian: python3-pandas); "
                "Statement.rows() gives the same lines as tuples") from None
        frame = pandas.DataFrame(
            [(line.sequence, line.time, line.kind, line.job_id, line.amount,
              line.held_change, line.detail) for line in self._lines],
            columns=list(_COLUMNS))
        return frame

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> "Statement":
        lines = [
            StatementLine(sequence=l["sequence"],
                          time=_time(l["created_ms"]) or _dt.datetime.fromtimestamp(0, _dt.timezone.utc),
                          kind=l["kind"], job_id=l["job_id"],
                          amount=l["amount"], held_change=l["held_change"],
                          detail=l["detail"], created_ms=l["created_ms"],
                          entry=l["entry"]) for l in d["lines"]
        ]
        return cls(d["account"], d["broker_id"], d["net_amount"],
                   d["held_change"], lines, d["checkpoint_tree_size"],
                   d["checkpoint_root_hash"])


@dataclass(frozen=True)
class CapacityEntry:
    """Capacity a peer region advertises for one model (CapacityEntry)."""

    broker: str  # the peer broker that advertised it
    region: str
    model: str
    vendor_class: str
    free_cards: int
    largest_node_cards: int  # most free cards on one node
    gangs: Tuple[Tuple[int, int], ...]  # (cards_per_node, nodes) it can hold
    lowest_price: int  # minor units per card-hour
    currency: str
    reliability_bp: int  # 0..10000
    link_up: bool = True
