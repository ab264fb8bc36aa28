// LogBuffers: the broker's bounded store of jobs' live output (issue 11,
// item 2). Pure: chunks in, reads out.
#include "jobs/log_buffer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace computenet::broker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::LogBatch Batch(const std::string& job, const std::string& node,
                   v1::LogStream stream, uint64_t offset,
                   const std::string& data, bool eof = false) {
  v1::LogBatch batch;
  batch.set_job_id(job);
  v1::LogChunk* chunk = batch.add_chunks();
  chunk->set_node(node);
  chunk->set_stream(stream);
  chunk->set_offset(offset);
  chunk->set_data(data);
  chunk->set_eof(eof);
  return batch;
}

v1::GetJobLogs Read(const std::string& job) {
  v1::GetJobLogs read;
  read.set_job_id(job);
  return read;
}

void AddCursor(v1::GetJobLogs* read, const std::string& node,
               v1::LogStream stream, uint64_t offset) {
  v1::LogCursor* cursor = read->add_cursors();
  cursor->set_node(node);
  cursor->set_stream(stream);
  cursor->set_offset(offset);
}

constexpr auto kOut = v1::LOG_STREAM_STDOUT;
constexpr auto kErr = v1::LOG_STREAM_STDERR;

TEST(LogBuffersTest, ReadsFromCursorsAndResentBytesAreStoredOnce) {
  LogBuffers logs;
  logs.Append(Batch("j", "n1", kOut, 0, "line 1\n"), 1);
  logs.Append(Batch("j", "n1", kOut, 0, "line 1\nline 2\n"), 2);  // resent
  auto all = logs.Read(Read("j"));
  ASSERT_EQ(all.chunks.size(), 1u);
  EXPECT_EQ(all.chunks[0].data(), "line 1\nline 2\n");
  EXPECT_EQ(all.chunks[0].offset(), 0u);
  EXPECT_TRUE(all.caught_up);
  EXPECT_FALSE(all.all_eof);

  v1::GetJobLogs next = Read("j");
  AddCursor(&next, "n1", kOut, 7);
  auto rest = logs.Read(next);
  ASSERT_EQ(rest.chunks.size(), 1u);
  EXPECT_EQ(rest.chunks[0].data(), "line 2\n");
  EXPECT_EQ(rest.chunks[0].skipped(), 0u);

  AddCursor(&next, "n1", kOut, 14);
  next.mutable_cursors(0)->set_offset(14);
  EXPECT_TRUE(logs.Read(next).chunks.empty());  // nothing new
}

TEST(LogBuffersTest,
     EachStreamKeepsItsNewestBytesAndReadersAreToldWhatTheyMissed) {
  LogBufferOptions options;
  options.per_stream_bytes = 10;
  LogBuffers logs(options);
  logs.Append(Batch("j", "n1", kOut, 0, "0123456789abcdef"), 1);
  v1::GetJobLogs read = Read("j");
  AddCursor(&read, "n1", kOut, 2);
  auto result = logs.Read(read);
  ASSERT_EQ(result.chunks.size(), 1u);
  EXPECT_EQ(result.chunks[0].data(), "6789abcdef");
  EXPECT_EQ(result.chunks[0].offset(), 6u);
  EXPECT_EQ(result.chunks[0].skipped(), 4u);
  EXPECT_EQ(logs.total_bytes(), 10u);

  // A gap (the agent skipped ahead): what follows it is held, and a reader
  // at the old end is told how much it missed.
  logs.Append(Batch("j", "n1", kOut, 100, "xyz"), 2);
  read.mutable_cursors(0)->set_offset(16);
  result = logs.Read(read);
  ASSERT_EQ(result.chunks.size(), 1u);
  EXPECT_EQ(result.chunks[0].data(), "xyz");
  EXPECT_EQ(result.chunks[0].skipped(), 84u);
}

TEST(LogBuffersTest, NodeStreamTailAndMaxBytesSelect) {
  LogBuffers logs;
  logs.Append(Batch("j", "n1", kOut, 0, "a1\na2\na3\n"), 1);
  logs.Append(Batch("j", "n2", kOut, 0, "b1\nb2\nb3\nb4"), 1);
  logs.Append(Batch("j", "n2", kErr, 0, "oops\n"), 1);

  v1::GetJobLogs read = Read("j");
  read.set_node("n2");
  auto result = logs.Read(read);
  ASSERT_EQ(result.chunks.size(), 2u);
  for (const auto& chunk : result.chunks) EXPECT_EQ(chunk.node(), "n2");

  read.set_stream(kOut);
  read.set_tail_lines(2);
  result = logs.Read(read);
  ASSERT_EQ(result.chunks.size(), 1u);
  EXPECT_EQ(result.chunks[0].data(), "b3\nb4");
  EXPECT_EQ(result.chunks[0].offset(), 6u);

  read.set_node("n1");
  result = logs.Read(read);
  ASSERT_EQ(result.chunks.size(), 1u);
  EXPECT_EQ(result.chunks[0].data(), "a2\na3\n");

  v1::GetJobLogs small = Read("j");
  small.set_max_bytes(4);
  result = logs.Read(small);
  EXPECT_TRUE(result.more);
  EXPECT_FALSE(result.caught_up);
  size_t bytes = 0;
  for (const auto& chunk : result.chunks) bytes += chunk.data().size();
  EXPECT_EQ(bytes, 4u);
}

TEST(LogBuffersTest, EofIsReportedOnceEveryStreamEnded) {
  LogBuffers logs;
  logs.Append(Batch("j", "n1", kOut, 0, "x\n"), 1);
  logs.Append(Batch("j", "n1", kErr, 0, "", /*eof=*/true), 1);
  EXPECT_FALSE(logs.Read(Read("j")).all_eof);
  logs.Append(Batch("j", "n1", kOut, 2, "", /*eof=*/true), 2);
  auto result = logs.Read(Read("j"));
  EXPECT_TRUE(result.all_eof);
  EXPECT_TRUE(result.caught_up);
}

TEST(LogBuffersTest, TotalMemoryIsBoundedEndedJobsGoFirst) {
  LogBufferOptions options;
  options.per_stream_bytes = 100;
  options.total_bytes = 250;
  LogBuffers logs(options);
  const std::string hundred(100, 'x');
  logs.Append(Batch("old", "n", kOut, 0, hundred), 1);
  logs.Append(Batch("running", "n", kOut, 0, hundred), 2);
  logs.Ended("old", 3);
  logs.Append(Batch("new", "n", kOut, 0, hundred), 4);
  EXPECT_LE(logs.total_bytes(), 250u);
  EXPECT_TRUE(logs.Read(Read("old")).chunks.empty());
  EXPECT_EQ(logs.Read(Read("running")).chunks.size(), 1u);
  EXPECT_EQ(logs.Read(Read("new")).chunks.size(), 1u);

  logs.Ended("new", 5);
  logs.Expire(/*now_ms=*/100, /*keep_ms=*/50);
  EXPECT_TRUE(logs.Read(Read("new")).chunks.empty());
  EXPECT_EQ(logs.jobs(), 1u);
  EXPECT_EQ(logs.total_bytes(), 100u);
}

TEST(LogBuffersTest, StderrTailIsTheLastLinesBoundedAndValidUtf8) {
  LogBuffers logs;
  std::string err;
  for (int i = 1; i <= 400; ++i) err += "err line " + std::to_string(i) + "\n";
  err += "bad bytes \xff\xfe end\n";
  logs.Append(Batch("j", "n1", kErr, 0, err.substr(0, 60000)), 1);
  logs.Append(Batch("j", "n1", kOut, 0, "not this\n"), 1);
  const std::string tail = logs.StderrTail("j");
  EXPECT_LE(tail.size(), kStderrTailBytes);
  EXPECT_THAT(tail, HasSubstr("err line 400\n"));
  EXPECT_THAT(tail, HasSubstr("bad bytes ?? end"));
  EXPECT_THAT(tail, Not(HasSubstr("not this")));
  EXPECT_EQ(tail.rfind("err line ", 0), 0u) << "starts at a line start";
  EXPECT_EQ(logs.StderrTail("unknown"), "");

  logs.Append(Batch("g", "n1", kErr, 0, "first node failed\n"), 1);
  logs.Append(Batch("g", "n2", kErr, 0, "second node too\n"), 1);
  EXPECT_EQ(logs.StderrTail("g"),
            "==> n1 <==\nfirst node failed\n==> n2 <==\nsecond node too\n");
}

TEST(LogBuffersTest, ValidateRefusesOversizedAndMalformedBatches) {
  EXPECT_TRUE(ValidateLogBatch(Batch("j", "n1", kOut, 0, "ok")).ok());
  EXPECT_EQ(ValidateLogBatch(Batch("j", "n1", kOut, 0,
                                   std::string(kMaxLogChunkBytes + 1, 'x')))
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLogBatch(Batch("j", "", kOut, 0, "x")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ValidateLogBatch(Batch("j", std::string(129, 'n'), kOut, 0, "x")).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ValidateLogBatch(Batch("j", "n1", v1::LOG_STREAM_UNSPECIFIED, 0, "x"))
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLogBatch(Batch("", "n1", kOut, 0, "x")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLogBatch(Batch("j", "n1", kOut, ~uint64_t{0}, "x")).code(),
            StatusCode::kInvalidArgument);
  v1::LogBatch many;
  many.set_job_id("j");
  for (size_t i = 0; i <= kMaxLogBatchChunks; ++i) {
    *many.add_chunks() = Batch("j", "n1", kOut, 0, "x").chunks(0);
  }
  EXPECT_EQ(ValidateLogBatch(many).code(), StatusCode::kInvalidArgument);
  v1::LogBatch big;
  big.set_job_id("j");
  for (int i = 0; i < 5; ++i) {
    *big.add_chunks() = Batch("j", "n" + std::to_string(i), kOut, 0,
                              std::string(kMaxLogChunkBytes, 'x'))
                            .chunks(0);
  }
  EXPECT_EQ(ValidateLogBatch(big).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace computenet::broker
