// Status, StatusOr, the CN_ macros, and Status <-> computenet.v1.Status.
#include "computenet/common/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "computenet/common/envelope.h"

namespace computenet {
namespace {

using ::testing::HasSubstr;

TEST(StatusTest, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.ToString(), "OK");
  EXPECT_EQ(status, OkStatus());
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status status = NotFoundError("no job j-1");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no job j-1");
  EXPECT_EQ(status.ToString(), "NOT_FOUND: no job j-1");
}

TEST(StatusTest, HelpersMapToTheirCodes) {
  struct Case {
    Status status;
    StatusCode code;
  };
  const std::vector<Case> cases = {
      {CancelledError("x"), StatusCode::kCancelled},
      {UnknownError("x"), StatusCode::kUnknown},
      {InvalidArgumentError("x"), StatusCode::kInvalidArgument},
      {DeadlineExceededError("x"), StatusCode::kDeadlineExceeded},
      {NotFoundError("x"), StatusCode::kNotFound},
      {AlreadyExistsError("x"), StatusCode::kAlreadyExists},
      {PermissionDeniedError("x"), StatusCode::kPermissionDenied},
      {ResourceExhaustedError("x"), StatusCode::kResourceExhausted},
      {FailedPreconditionError("x"), StatusCode::kFailedPrecondition},
      {AbortedError("x"), StatusCode::kAborted},
      {OutOfRangeError("x"), StatusCode::kOutOfRange},
      {UnimplementedError("x"), StatusCode::kUnimplemented},
      {InternalError("x"), StatusCode::kInternal},
      {UnavailableError("x"), StatusCode::kUnavailable},
      {DataLossError("x"), StatusCode::kDataLoss},
      {UnauthenticatedError("x"), StatusCode::kUnauthenticated},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.status.ToString();
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.message(), "x");
  }
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(InternalError("a"), InternalError("a"));
  EXPECT_FALSE(InternalError("a") == InternalError("b"));
  EXPECT_FALSE(InternalError("a") == UnknownError("a"));
}

TEST(StatusTest, StatusCodeNameSpellsGrpcNames) {
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "OK");
  EXPECT_EQ(StatusCodeName(StatusCode::kCancelled), "CANCELLED");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnknown), "UNKNOWN");
  EXPECT_EQ(StatusCodeName(StatusCode::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(StatusCode::kDeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_EQ(StatusCodeName(StatusCode::kNotFound), "NOT_FOUND");
  EXPECT_EQ(StatusCodeName(StatusCode::kAlreadyExists), "ALREADY_EXISTS");
  EXPECT_EQ(StatusCodeName(StatusCode::kPermissionDenied), "PERMISSION_DENIED");
  EXPECT_EQ(StatusCodeName(StatusCode::kResourceExhausted),
            "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition),
            "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(StatusCode::kAborted), "ABORTED");
  EXPECT_EQ(StatusCodeName(StatusCode::kOutOfRange), "OUT_OF_RANGE");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnimplemented), "UNIMPLEMENTED");
  EXPECT_EQ(StatusCodeName(StatusCode::kInternal), "INTERNAL");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnavailable), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "DATA_LOSS");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnauthenticated), "UNAUTHENTICATED");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status status = NotFoundError("open x: No such file");
  Status wrapped = status.WithContext("/etc/site.toml");
  EXPECT_EQ(wrapped.code(), StatusCode::kNotFound);
  EXPECT_EQ(wrapped.message(), "/etc/site.toml: open x: No such file");
  // The original is untouched.
  EXPECT_EQ(status.message(), "open x: No such file");
}

TEST(StatusTest, WithContextOnOkStaysOk) {
  Status wrapped = OkStatus().WithContext("anything");
  EXPECT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped.message(), "");
}

TEST(StatusOrTest, HoldsValue) {
  StatusOr<std::string> result(std::string("hello"));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.status().ok());
  EXPECT_EQ(result.value(), "hello");
  EXPECT_EQ(*result, "hello");
  EXPECT_EQ(result->size(), 5u);
}

TEST(StatusOrTest, HoldsError) {
  StatusOr<int> result(InvalidArgumentError("bad"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status(), InvalidArgumentError("bad"));
}

TEST(StatusOrTest, BuiltFromOkStatusBecomesInternal) {
  StatusOr<int> result{OkStatus()};
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInternal);
}

TEST(StatusOrTest, MovesOutMoveOnlyValue) {
  StatusOr<std::unique_ptr<int>> result(std::make_unique<int>(7));
  ASSERT_TRUE(result.ok());
  std::unique_ptr<int> taken = std::move(result).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 7);
}

TEST(StatusOrTest, ValueIsMutable) {
  StatusOr<std::vector<int>> result(std::vector<int>{1, 2});
  ASSERT_TRUE(result.ok());
  result->push_back(3);
  result.value().push_back(4);
  EXPECT_EQ(*result, (std::vector<int>{1, 2, 3, 4}));
}

// --- macros ----------------------------------------------------------------

Status Step(bool fail, int* calls) {
  ++*calls;
  return fail ? AbortedError("step failed") : OkStatus();
}

Status TwoSteps(bool fail_first, int* calls) {
  CN_RETURN_IF_ERROR(Step(fail_first, calls));
  CN_RETURN_IF_ERROR(Step(false, calls));
  return OkStatus();
}

TEST(StatusMacroTest, ReturnIfErrorStopsAtFirstError) {
  int calls = 0;
  Status status = TwoSteps(/*fail_first=*/true, &calls);
  EXPECT_EQ(status, AbortedError("step failed"));
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacroTest, ReturnIfErrorContinuesOnOk) {
  int calls = 0;
  EXPECT_TRUE(TwoSteps(/*fail_first=*/false, &calls).ok());
  EXPECT_EQ(calls, 2);
}

StatusOr<int> Half(int n) {
  if (n % 2 != 0) return InvalidArgumentError(std::to_string(n) + " is odd");
  return n / 2;
}

StatusOr<int> Quarter(int n) {
  CN_ASSIGN_OR_RETURN(int half, Half(n));
  CN_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(StatusMacroTest, AssignOrReturnAssignsValues) {
  auto result = Quarter(12);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(*result, 3);
}

TEST(StatusMacroTest, AssignOrReturnPropagatesFirstError) {
  auto result = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status(), InvalidArgumentError("3 is odd"));
  auto early = Quarter(5);
  EXPECT_EQ(early.status(), InvalidArgumentError("5 is odd"));
}

Status AssignToExisting(std::string* out) {
  std::string value = "unset";
  CN_ASSIGN_OR_RETURN(value, StatusOr<std::string>(std::string("set")));
  *out = value;
  return OkStatus();
}

TEST(StatusMacroTest, AssignOrReturnIntoExistingVariable) {
  std::string out;
  ASSERT_TRUE(AssignToExisting(&out).ok());
  EXPECT_EQ(out, "set");
}

// --- wire form -------------------------------------------------------------

TEST(StatusProtoTest, RoundTripsEveryCode) {
  for (int code = 0; code <= static_cast<int>(StatusCode::kUnauthenticated);
       ++code) {
    Status original(static_cast<StatusCode>(code), "message " +
                                                       std::to_string(code));
    v1::Status proto = StatusToProto(original);
    EXPECT_EQ(static_cast<int>(proto.code()), code);
    EXPECT_EQ(proto.message(), original.message());
    EXPECT_EQ(StatusFromProto(proto), original);
  }
}

TEST(StatusProtoTest, ProtoNamesMatchStatusCodeNames) {
  for (int code = 0; code <= static_cast<int>(StatusCode::kUnauthenticated);
       ++code) {
    EXPECT_EQ(v1::Status::Code_Name(static_cast<v1::Status::Code>(code)),
              StatusCodeName(static_cast<StatusCode>(code)));
  }
}

TEST(StatusProtoTest, SurvivesSerialization) {
  v1::Status proto = StatusToProto(PermissionDeniedError("not enrolled"));
  v1::Status parsed;
  ASSERT_TRUE(parsed.ParseFromString(proto.SerializeAsString()));
  EXPECT_EQ(StatusFromProto(parsed), PermissionDeniedError("not enrolled"));
}

TEST(StatusProtoTest, UnknownCodeBecomesUnknown) {
  v1::Status proto;
  proto.set_code(static_cast<v1::Status::Code>(42));
  proto.set_message("from the future");
  Status status = StatusFromProto(proto);
  EXPECT_EQ(status.code(), StatusCode::kUnknown);
  EXPECT_THAT(status.message(), HasSubstr("42"));
  EXPECT_THAT(status.message(), HasSubstr("from the future"));

  proto.set_code(static_cast<v1::Status::Code>(-1));
  EXPECT_EQ(StatusFromProto(proto).code(), StatusCode::kUnknown);

  proto.set_code(static_cast<v1::Status::Code>(17));
  EXPECT_EQ(StatusFromProto(proto).code(), StatusCode::kUnknown);
}

TEST(StatusProtoTest, UnknownCodeArrivingOnTheWireBecomesUnknown) {
  // A newer peer's code, as raw bytes: field 1 varint 99.
  v1::Status parsed;
  ASSERT_TRUE(parsed.ParseFromString(std::string("\x08\x63", 2)));
  EXPECT_EQ(StatusFromProto(parsed).code(), StatusCode::kUnknown);
}

}  // namespace
}  // namespace computenet
