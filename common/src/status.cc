#include "computenet/common/status.h"

namespace computenet {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kUnknown: return "UNKNOWN";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDataLoss: return "DATA_LOSS";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += message_;
  return Status(code_, std::move(message));
}

#define CN_DEFINE_ERROR(Name, code)                 \
  Status Name(std::string message) {                \
    return Status(StatusCode::code, std::move(message)); \
  }
CN_DEFINE_ERROR(CancelledError, kCancelled)
CN_DEFINE_ERROR(UnknownError, kUnknown)
CN_DEFINE_ERROR(InvalidArgumentError, kInvalidArgument)
CN_DEFINE_ERROR(DeadlineExceededError, kDeadlineExceeded)
CN_DEFINE_ERROR(NotFoundError, kNotFound)
CN_DEFINE_ERROR(AlreadyExistsError, kAlreadyExists)
CN_DEFINE_ERROR(PermissionDeniedError, kPermissionDenied)
CN_DEFINE_ERROR(ResourceExhaustedError, kResourceExhausted)
CN_DEFINE_ERROR(FailedPreconditionError, kFailedPrecondition)
CN_DEFINE_ERROR(AbortedError, kAborted)
CN_DEFINE_ERROR(OutOfRangeError, kOutOfRange)
CN_DEFINE_ERROR(UnimplementedError, kUnimplemented)
CN_DEFINE_ERROR(InternalError, kInternal)
CN_DEFINE_ERROR(UnavailableError, kUnavailable)
CN_DEFINE_ERROR(DataLossError, kDataLoss)
CN_DEFINE_ERROR(UnauthenticatedError, kUnauthenticated)
#undef CN_DEFINE_ERROR

}  // namespace computenet
