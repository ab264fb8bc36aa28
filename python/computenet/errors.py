"""Exceptions raised by the computenet SDK.

Every failure the broker or the C++ SDK reports is a status code (the gRPC
code set, ``computenet/common/status.h``) and a message. The SDK raises the
subclass of :class:`Error` for the code, carrying both::

    try:
        job.status()
    except computenet.NotFound as e:
        print(e.code, e.message)   # StatusCode.NOT_FOUND, "job hub-7 ..."

Retry guidance follows the codes: :class:`Unavailable` means retry the call
(the broker is unreachable or did not answer), :class:`Aborted` retry the
transaction, :class:`FailedPrecondition` fix state first.

The connection's own failures are told apart within moments, without the
retries (from the ZeroMQ socket monitor of the C++ SDK)::

    try:
        client.jobs()
    except computenet.Unauthenticated as e:    # "key refused by the broker at ..."
        ...  # the key is not enrolled there, or was revoked: ask the operator
    except computenet.FailedPrecondition as e: # "handshake with ... failed: ..."
        ...  # broker_identity is not that broker's key (or not a broker)
    except computenet.Unavailable as e:        # "broker unreachable at ..."
        ...  # nothing answered in time: retry later
"""

from __future__ import annotations

import enum
from typing import Dict, Type

__all__ = [
    "StatusCode",
    "Error",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
]


class StatusCode(enum.IntEnum):
    """The status codes, with gRPC's numbers (as they travel on the wire)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Error(Exception):
    """A ComputeNet call failed.

    Attributes:
        code: the :class:`StatusCode`.
        message: the broker's (or the SDK's) explanation.
    """

    code: StatusCode = StatusCode.UNKNOWN

    def __init__(self, message: str, code: "StatusCode | None" = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = StatusCode(code)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class Cancelled(Error):
    code = StatusCode.CANCELLED


class Unknown(Error):
    code = StatusCode.UNKNOWN


class InvalidArgument(Error, ValueError):
    """The request is malformed or impossible (a bad spec, a bad key file)."""

    code = StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(Error, TimeoutError):
    """A wait ran out of time (the job goes on)."""

    code = StatusCode.DEADLINE_EXCEEDED


class NotFound(Error, LookupError):
    """No such job, or not the caller's (the broker does not tell apart)."""

    code = StatusCode.NOT_FOUND


class AlreadyExists(Error):
    code = StatusCode.ALREADY_EXISTS


class PermissionDenied(Error):
    """The key may not do this (e.g. an admin-only view, another account)."""

    code = StatusCode.PERMISSION_DENIED


class ResourceExhausted(Error):
    """A limit was hit (rate limit, funds, queue size)."""

    code = StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """The state does not allow it (e.g. cancelling a job that ended).

    Also the CURVE handshake failing at the connection ("handshake with
    <endpoint> failed: ..."): the pinned ``broker_identity`` is not that
    broker's key, or the endpoint is not a ComputeNet broker.
    """

    code = StatusCode.FAILED_PRECONDITION


class Aborted(Error):
    code = StatusCode.ABORTED


class OutOfRange(Error):
    code = StatusCode.OUT_OF_RANGE


class Unimplemented(Error):
    code = StatusCode.UNIMPLEMENTED


class Internal(Error):
    code = StatusCode.INTERNAL


class Unavailable(Error, ConnectionError):
    """No reply from the broker after the retries (retry later).

    "broker unreachable at <endpoint>" when no connection came up at all,
    "no reply from broker at <endpoint>" when one did but nothing answered.
    """

    code = StatusCode.UNAVAILABLE


class DataLoss(Error):
    code = StatusCode.DATA_LOSS


class Unauthenticated(Error):
    """The broker refused the key, or a signature or proof did not verify.

    From any call: "key refused by the broker at <endpoint> (ZAP status
    400)": the broker's handshake refused this key (not enrolled there, or
    revoked); raised at once, not after the retries. From ``statement()``
    also: a line's proof or the checkpoint's signature did not verify.
    """

    code = StatusCode.UNAUTHENTICATED


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (
        Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound,
        AlreadyExists, PermissionDenied, ResourceExhausted,
        FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal,
        Unavailable, DataLoss, Unauthenticated,
    )
}


def _from_status(code: int, message: str) -> Error:
    """The exception for a status (used by the C++ bridge)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return Error(message, StatusCode.UNKNOWN)
    return cls(message)
