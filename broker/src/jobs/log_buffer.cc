#include "jobs/log_buffer.h"

#include <algorithm>
#include <iterator>
#include <limits>

namespace computenet::broker {
namespace {

// Job output is any bytes; JobInfo.stderr_tail is a protobuf string, which
// must be UTF-8. Invalid sequences become '?'.
std::string ScrubUtf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (valid && length > 1) {
      // Overlong forms, surrogates and values past U+10FFFF are invalid too.
      uint32_t code = c & (0x7F >> length);
      for (size_t k = 1; k < length; ++k) {
        code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      }
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = code >= kMin[length] && code <= 0x10FFFF &&
              (code < 0xD800 || code > 0xDFFF);
    }
    if (!valid) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(text, i, length);
    i += length;
  }
  return out;
}

// The last at most max_bytes of data, from a line start if one is in
// reach (a cut line's head is noise).
std::string TailOf(const std::string& data, size_t max_bytes) {
  if (data.size() <= max_bytes) return data;
  size_t from = data.size() - max_bytes;
  const size_t newline = data.find('\n', from);
  if (newline != std::string::npos && newline + 1 < data.size()) {
    from = newline + 1;
  }
  return data.substr(from);
}

// Where the last `lines` lines of data begin (a final newline ends the last
// line, it does not start another).
size_t TailLinesStart(const std::string& data, uint32_t lines) {
  if (data.empty()) return 0;
  size_t position = data.size();
  if (data.back() == '\n') --position;
  uint32_t seen = 0;
  while (position > 0) {
    const size_t newline = data.rfind('\n', position - 1);
    if (newline == std::string::npos) return 0;
    if (++seen == lines) return newline + 1;
    position = newline;
  }
  return 0;
}

}  // namespace

Status ValidateLogBatch(const v1::LogBatch& batch) {
  if (batch.job_id().empty() || batch.job_id().size() > 128) {
    return InvalidArgumentError("log batch: job_id must be 1..128 bytes");
  }
  if (static_cast<size_t>(batch.chunks_size()) > kMaxLogBatchChunks) {
    return InvalidArgumentError("log batch: more than " +
                                std::to_string(kMaxLogBatchChunks) + " chunks");
  }
  size_t total = 0;
  for (const v1::LogChunk& chunk : batch.chunks()) {
    if (chunk.node().empty() || chunk.node().size() > kMaxLogNodeBytes) {
      return InvalidArgumentError("log batch: node must be 1..128 bytes");
    }
    if (chunk.stream() != v1::LOG_STREAM_STDOUT &&
        chunk.stream() != v1::LOG_STREAM_STDERR) {
      return InvalidArgumentError("log batch: stream must be STDOUT or STDERR");
    }
    if (chunk.data().size() > kMaxLogChunkBytes) {
      return InvalidArgumentError("log batch: a chunk over " +
                                  std::to_string(kMaxLogChunkBytes) + " bytes");
    }
    if (chunk.offset() > std::numeric_limits<uint64_t>::max() / 2) {
      return InvalidArgumentError("log batch: offset out of range");
    }
    total += chunk.data().size();
  }
  if (total > kMaxLogBatchBytes) {
    return InvalidArgumentError("log batch: more than " +
                                std::to_string(kMaxLogBatchBytes) +
                                " bytes of data");
  }
  return OkStatus();
}

void LogBuffers::Append(const v1::LogBatch& batch, int64_t now_ms) {
  JobLogs& job = jobs_[batch.job_id()];
  job.written_ms = now_ms;
  for (const v1::LogChunk& chunk : batch.chunks()) {
    const Key key{chunk.node(), static_cast<int>(chunk.stream())};
    auto found = job.streams.find(key);
    if (found == job.streams.end()) {
      if (job.streams.size() >= options_.max_streams_per_job) continue;
      found = job.streams.emplace(key, Stream{}).first;
      found->second.start = chunk.offset();
    }
    Stream& stream = found->second;
    const size_t before = stream.data.size();
    const uint64_t chunk_end = chunk.offset() + chunk.data().size();
    if (chunk.offset() > stream.end()) {
      // A gap (bytes the agent skipped, or a batch lost with a connection):
      // what was held is older than anything after the gap; start again.
      stream.data.clear();
      stream.start = chunk.offset();
      stream.data = chunk.data();
    } else if (chunk_end > stream.end()) {
      stream.data.append(chunk.data(), stream.end() - chunk.offset(),
                         std::string::npos);
    }
    if (chunk.eof()) stream.eof = true;
    if (stream.data.size() > options_.per_stream_bytes) {
      const size_t cut = stream.data.size() - options_.per_stream_bytes;
      stream.data.erase(0, cut);
      stream.start += cut;
    }
    job.bytes = job.bytes - before + stream.data.size();
    total_bytes_ = total_bytes_ - before + stream.data.size();
  }
  Trim();
}

void LogBuffers::Ended(const std::string& job_id, int64_t now_ms) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end() && it->second.ended_ms == 0) {
    it->second.ended_ms = now_ms;
  }
}

void LogBuffers::Expire(int64_t now_ms, int64_t keep_ms) {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    auto next = std::next(it);
    if (it->second.ended_ms != 0 && now_ms - it->second.ended_ms > keep_ms) {
      Drop(it);
    }
    it = next;
  }
}

void LogBuffers::Drop(std::map<std::string, JobLogs>::iterator it) {
  total_bytes_ -= it->second.bytes;
  jobs_.erase(it);
}

void LogBuffers::Trim() {
  while (total_bytes_ > options_.total_bytes && !jobs_.empty()) {
    // Ended jobs first, the longest ended; else the least recently written.
    auto victim = jobs_.end();
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      if (victim == jobs_.end()) {
        victim = it;
        continue;
      }
      const JobLogs& a = it->second;
      const JobLogs& b = victim->second;
      const bool a_ended = a.ended_ms != 0;
      const bool b_ended = b.ended_ms != 0;
      if (a_ended != b_ended) {
        if (a_ended) victim = it;
      } else if (a_ended ? a.ended_ms < b.ended_ms
                         : a.written_ms < b.written_ms) {
        victim = it;
      }
    }
    Drop(victim);
  }
}

LogBuffers::ReadResult LogBuffers::Read(const v1::GetJobLogs& request) const {
  ReadResult result;
  auto job = jobs_.find(request.job_id());
  if (job == jobs_.end()) return result;
  size_t budget = request.max_bytes() == 0
                      ? kDefaultLogReadBytes
                      : std::min<size_t>(request.max_bytes(), kMaxLogReadBytes);
  for (const auto& [key, stream] : job->second.streams) {
    if (!request.node().empty() && key.first != request.node()) continue;
    if (request.stream() != v1::LOG_STREAM_UNSPECIFIED &&
        key.second != static_cast<int>(request.stream())) {
      continue;
    }
    uint64_t from = stream.start;
    bool has_cursor = false;
    for (const v1::LogCursor& cursor : request.cursors()) {
      if (cursor.node() == key.first &&
          static_cast<int>(cursor.stream()) == key.second) {
        from = cursor.offset();
        has_cursor = true;
        break;
      }
    }
    uint64_t skipped = 0;
    if (!has_cursor) {
      skipped = stream.start;  // bytes before what is held
      if (request.tail_lines() > 0) {
        from = stream.start + TailLinesStart(stream.data, request.tail_lines());
        skipped = 0;  // asked for the end only
      }
    } else if (from < stream.start) {
      skipped = stream.start - from;
      from = stream.start;
    } else if (from > stream.end()) {
      from = stream.end();  // a cursor from a longer past: nothing new
    }
    const size_t available = static_cast<size_t>(stream.end() - from);
    const size_t take = std::min(available, budget);
    budget -= take;
    if (take < available) {
      result.caught_up = false;
      result.more = true;
    }
    if (!stream.eof) result.all_eof = false;
    if (take == 0 && skipped == 0 && !(stream.eof && !has_cursor)) continue;
    v1::LogChunk& chunk = result.chunks.emplace_back();
    chunk.set_node(key.first);
    chunk.set_stream(static_cast<v1::LogStream>(key.second));
    chunk.set_offset(from);
    chunk.set_data(
        stream.data.substr(static_cast<size_t>(from - stream.start), take));
    chunk.set_skipped(skipped);
    chunk.set_eof(stream.eof && from + take == stream.end());
  }
  return result;
}

std::string LogBuffers::StderrTail(const std::string& job_id) const {
  auto job = jobs_.find(job_id);
  if (job == jobs_.end()) return "";
  std::vector<std::pair<const std::string*, const Stream*>> written;
  for (const auto& [key, stream] : job->second.streams) {
    if (key.second == v1::LOG_STREAM_STDERR && !stream.data.empty()) {
      written.emplace_back(&key.first, &stream);
    }
  }
  if (written.empty()) return "";
  if (written.size() == 1) {
    return ScrubUtf8(TailOf(written[0].second->data, kStderrTailBytes));
  }
  // A gang: every node gets its share, at least a line's worth; at most 16
  // nodes are shown (the first ones, in name order).
  constexpr size_t kMaxNodes = 16;
  const size_t shown = std::min(written.size(), kMaxNodes);
  std::string tail;
  for (size_t i = 0; i < shown; ++i) {
    const std::string header = "==> " + *written[i].first + " <==\n";
    const size_t share = std::max<size_t>(
        64, kStderrTailBytes / shown -
                std::min(header.size(), kStderrTailBytes / shown));
    tail += header + TailOf(written[i].second->data, share);
    if (!tail.empty() && tail.back() != '\n') tail.push_back('\n');
  }
  if (written.size() > shown) {
    tail += "(" + std::to_string(written.size() - shown) +
            " more nodes wrote to stderr)\n";
  }
  return ScrubUtf8(tail);
}

}  // namespace computenet::broker
