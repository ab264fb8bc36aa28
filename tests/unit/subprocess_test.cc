// RunSubprocess on real programs: no shell, separate streams, exit codes,
// timeouts, missing programs, large output.
#include "computenet/provider/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace computenet::provider {
namespace {

using ::testing::HasSubstr;

TEST(SubprocessTest, CapturesStreamsAndExitCode) {
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"};
  auto result = RunSubprocess(options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 7);
  EXPECT_EQ(result->out, "out\n");
  EXPECT_EQ(result->err, "err\n");
  EXPECT_FALSE(result->truncated);
}

TEST(SubprocessTest, ArgumentsAreNeverInterpretedByAShell) {
  SubprocessOptions options;
  options.argv = {"printf", "%s|", "$HOME; echo injected", "`id`", "a b"};
  auto result = RunSubprocess(options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->out, "$HOME; echo injected|`id`|a b|");
}

TEST(SubprocessTest, EnvironmentOverridesAreSeen) {
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", "printf '%s' \"$CN_SUBPROCESS_TEST\""};
  options.env["CN_SUBPROCESS_TEST"] = "value with spaces";
  auto result = RunSubprocess(options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->out, "value with spaces");
}

TEST(SubprocessTest, SignalledChildReports128PlusSignal) {
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", "kill -TERM $$"};
  auto result = RunSubprocess(options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 128 + 15);
}

TEST(SubprocessTest, TimeoutKillsTheWholeGroup) {
  SubprocessOptions options;
  // The shell's child keeps the pipe open too: both must go.
  options.argv = {"/bin/sh", "-c", "echo partial >&2; sleep 30 & sleep 30"};
  options.timeout_ms = 300;
  auto result = RunSubprocess(options);
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("partial"));
}

TEST(SubprocessTest, MissingProgramIsNotFound) {
  SubprocessOptions options;
  options.argv = {"computenet-no-such-program-xyz"};
  EXPECT_EQ(RunSubprocess(options).status().code(), StatusCode::kNotFound);
  options.argv = {"/nonexistent/dir/prog"};
  EXPECT_EQ(RunSubprocess(options).status().code(), StatusCode::kNotFound);
}

TEST(SubprocessTest, BadArgvIsInvalid) {
  SubprocessOptions options;
  EXPECT_EQ(RunSubprocess(options).status().code(), StatusCode::kInvalidArgument);
  options.argv = {"echo", std::string("a\0b", 3)};
  EXPECT_EQ(RunSubprocess(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(SubprocessTest, LargeOutputOnBothStreamsDoesNotDeadlockAndIsCapped) {
  SubprocessOptions options;
  // 2 MiB on stdout and on stderr at once: a reader that drained one pipe
  // at a time would deadlock on the other.
  options.argv = {"/bin/sh", "-c",
                  "head -c 2097152 /dev/zero & head -c 2097152 /dev/zero >&2; wait"};
  auto result = RunSubprocess(options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->out.size(), 2097152u);
  EXPECT_EQ(result->err.size(), 2097152u);

  options.max_output_bytes = 1000;
  result = RunSubprocess(options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->out.size(), 1000u);
  EXPECT_TRUE(result->truncated);
}

}  // namespace
}  // namespace computenet::provider
