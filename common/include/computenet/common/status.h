// Status and StatusOr<T>: the result of every call that crosses a library
// boundary in ComputeNet. Modeled on absl::Status; the codes are the gRPC code
// set with the same numbers, and travel unchanged in protobuf replies
// (computenet.v1.Status). Retry guidance: kUnavailable = retry the call,
// kAborted = retry the transaction, kFailedPrecondition = fix state first.
//
// Thread safety: values; distinct objects may be used from any thread.
#ifndef COMPUTENET_COMMON_STATUS_H_
#define COMPUTENET_COMMON_STATUS_H_

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace computenet {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "OK", "INVALID_ARGUMENT", ... as gRPC spells them.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
Status CancelledError(std::string message);
Status UnknownError(std::string message);
Status InvalidArgumentError(std::string message);
Status DeadlineExceededError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status OutOfRangeError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status UnauthenticatedError(std::string message);

// Either a T or a non-OK Status. Accessing value() on an error is a bug and
// aborts; callers check ok() first.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : data_(std::move(status)) {  // NOLINT: implicit
    if (std::get<Status>(data_).ok()) {
      data_ = Status(StatusCode::kInternal, "StatusOr built from OK status");
    }
  }
  StatusOr(T value) : data_(std::move(value)) {}  // NOLINT: implicit

  bool ok() const { return std::holds_alternative<T>(data_); }
  Status status() const {
    return ok() ? Status() : std::get<Status>(data_);
  }
  const T& value() const& { return std::get<T>(data_); }
  T& value() & { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> data_;
};

}  // namespace computenet

#define CN_STATUS_CONCAT_INNER(a, b) a##b
#define CN_STATUS_CONCAT(a, b) CN_STATUS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function if it is not OK.
#define CN_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::computenet::Status cn_status_ = (expr);     \
    if (!cn_status_.ok()) return cn_status_;      \
  } while (0)

// Evaluates a StatusOr expression; returns its error, or moves its value into
// `lhs` (which may be a declaration: `auto x`).
#define CN_ASSIGN_OR_RETURN(lhs, expr) \
  CN_ASSIGN_OR_RETURN_IMPL(CN_STATUS_CONCAT(cn_statusor_, __LINE__), lhs, expr)
#define CN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#endif  // COMPUTENET_COMMON_STATUS_H_
