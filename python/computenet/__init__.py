"""ComputeNet's Python SDK: submit and follow GPU jobs on a federated network.

Built on the C++ consumer SDK (one implementation of CURVE, retries,
idempotent submit and status codes), so a Python client behaves exactly as
the ``computenet`` CLI does::

    import computenet

    client = computenet.Client.from_config()   # env vars / ~/.config/computenet/config.toml
    job = client.submit(command=["python", "train.py"], models=["A800|H800"],
                        cards=2, max_duration_s=3600)
    for info in job.events():                  # each state change, in order
        print(info.state, info.reason)
    print(job.wait().exit_code)

Errors are exceptions from :mod:`computenet.errors` (all subclasses of
:class:`computenet.Error` with ``.code`` and ``.message``). A
:class:`Client` is thread-safe (a connection per thread underneath) and
releases the GIL whenever it blocks.
"""

from .errors import (Aborted, AlreadyExists, Cancelled, DataLoss,
                     DeadlineExceeded, Error, FailedPrecondition, Internal,
                     InvalidArgument, NotFound, OutOfRange, PermissionDenied,
                     ResourceExhausted, StatusCode, Unauthenticated,
                     Unavailable, Unimplemented, Unknown)
from .types import (CapacityEntry, JobInfo, JobSpec, JobState, LogChunk,
                    NodeAssignment, Priority, Statement, StatementLine)
from .client import Client, Job, default_config_path

__version__ = "0.1.0"

__all__ = [
    "Client", "Job", "JobSpec", "JobInfo", "JobState", "Priority",
    "NodeAssignment", "LogChunk", "Statement", "StatementLine", "CapacityEntry",
    "default_config_path", "StatusCode", "Error", "Cancelled", "Unknown",
    "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
    "Unauthenticated",
]
