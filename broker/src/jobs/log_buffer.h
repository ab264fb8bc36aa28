// LogBuffers: the broker's bounded, in-memory store of jobs' live output
// (docs/protocol.md, "Live logs"). Agents (and, for forwarded jobs, the
// remote broker) push chunks of each node's stdout and stderr at byte
// offsets; consumers read from their cursors. Each stream keeps only its
// newest bytes (a ring of per_stream_bytes), and all streams together at
// most total_bytes: past that, the buffers of ended jobs go first (oldest
// end first), then those of the job least recently written. A reader whose
// cursor fell behind what is held is told how many bytes it skipped, so
// memory stays bounded whatever the consumers do (or fail to do).
//
// Log content is untrusted: it is stored and returned as bytes, never
// logged or interpreted beyond finding line starts for tail reads.
//
// Thread safety: owned by the broker's core-loop thread; not thread-safe.
#ifndef COMPUTENET_BROKER_JOBS_LOG_BUFFER_H_
#define COMPUTENET_BROKER_JOBS_LOG_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/consumer.pb.h"
#include "computenet/v1/provider.pb.h"
#include "core/imports.h"

namespace computenet::broker {

struct LogBufferOptions {
  size_t per_stream_bytes = 256 * 1024;
  size_t total_bytes = 64 * 1024 * 1024;
  // Streams one job may have; chunks for more are dropped.
  size_t max_streams_per_job = 8192;  // 4096 nodes (kMaxNodes) x 2
};

// Limits on what an agent or peer may push, checked by ValidateLogBatch.
inline constexpr size_t kMaxLogChunkBytes = 64 * 1024;
inline constexpr size_t kMaxLogBatchChunks = 16;
inline constexpr size_t kMaxLogBatchBytes = 256 * 1024;
inline constexpr size_t kMaxLogNodeBytes = 128;
// What GetJobLogs returns at most per reply, and by default.
inline constexpr size_t kMaxLogReadBytes = 512 * 1024;
inline constexpr size_t kDefaultLogReadBytes = 256 * 1024;
// The durable stderr tail kept in JobInfo.stderr_tail.
inline constexpr size_t kStderrTailBytes = 2048;

// INVALID_ARGUMENT (saying which limit) for a batch over the limits above,
// with an unknown stream, an empty or oversized node name, or offsets that
// overflow.
Status ValidateLogBatch(const v1::LogBatch& batch);

class LogBuffers {
 public:
  explicit LogBuffers(LogBufferOptions options = {}) : options_(options) {}

  // Appends a validated batch. Bytes already held are not stored twice
  // (a resent chunk); a chunk past the end leaves a gap (readers are told).
  void Append(const v1::LogBatch& batch, int64_t now_ms);

  // The job ended: its buffers are the first to go when memory is short.
  void Ended(const std::string& job_id, int64_t now_ms);
  // Drops ended jobs' buffers older than keep_ms (from the tick).
  void Expire(int64_t now_ms, int64_t keep_ms);

  struct ReadResult {
    std::vector<v1::LogChunk> chunks;
    bool caught_up = true;  // every selected stream was read to its end
    bool all_eof = true;    // ... and every one of them is complete
    bool more = false;      // max_bytes cut it short
  };
  ReadResult Read(const v1::GetJobLogs& request) const;

  // The last kStderrTailBytes of the job's stderr, per node (headed
  // "==> node <==" when more than one node wrote to stderr).
  std::string StderrTail(const std::string& job_id) const;

  size_t total_bytes() const { return total_bytes_; }
  size_t jobs() const { return jobs_.size(); }

 private:
  struct Stream {
    uint64_t start = 0;  // offset of data[0]
    std::string data;
    bool eof = false;
    uint64_t end() const { return start + data.size(); }
  };
  using Key = std::pair<std::string, int>;  // (node, stream)
  struct JobLogs {
    std::map<Key, Stream> streams;
    int64_t written_ms = 0;
    int64_t ended_ms = 0;  // 0 while running
    size_t bytes = 0;
  };
  void Trim();
  void Drop(std::map<std::string, JobLogs>::iterator it);

  LogBufferOptions options_;
  std::map<std::string, JobLogs> jobs_;
  size_t total_bytes_ = 0;
};

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_JOBS_LOG_BUFFER_H_
