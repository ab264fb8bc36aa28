#include "site_data.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "computenet/bundles/bundle_archive.h"
#include "computenet/common/envelope.h"
#include "computenet/common/files.h"
#include "safe_path.h"

namespace computenet::provider {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChunkTimeoutMs = 30'000;
constexpr int64_t kRetryMs = 1'000;
constexpr int64_t kUpkeepMs = 60'000;

int64_t AgeMs(const fs::path& path, int64_t now_ms) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  const int64_t written_ms = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000 +
                             info.st_mtim.tv_nsec / 1'000'000;
  return now_ms - written_ms;
}

uint64_t DirectoryBytes(const fs::path& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(
           dir, fs::directory_options::skip_permission_denied, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error)) bytes += it->file_size(error);
  }
  return bytes;
}

}  // namespace

SiteData::SiteData(SiteDataOptions options) : options_(std::move(options)) {}

StatusOr<std::unique_ptr<SiteData>> SiteData::Open(const SiteDataOptions& options) {
  if (options.work_dir.empty()) {
    return InvalidArgumentError("site data needs a work directory");
  }
  std::unique_ptr<SiteData> data(new SiteData(options));
  bundles::BundleStoreOptions inputs;
  inputs.dir = options.work_dir + "/.bundles";
  inputs.max_bundle_bytes = std::max<uint64_t>(options.max_input_bytes, 1);
  CN_ASSIGN_OR_RETURN(data->inputs_, bundles::BundleStore::Open(inputs));
  bundles::BundleStoreOptions results;
  results.dir = options.work_dir + "/.results";
  results.max_bundle_bytes = std::max<uint64_t>(options.max_result_bytes, 1);
  CN_ASSIGN_OR_RETURN(data->results_, bundles::BundleStore::Open(results));
  return data;
}

std::string SiteData::JobDir(const std::string& job_id) const {
  return options_.work_dir + "/" + SafePathPart(job_id);
}

std::string SiteData::WorkspaceFor(const std::string& job_id) const {
  return JobDir(job_id) + "/workspace";
}

std::string SiteData::ResultNote(const std::string& job_id) const {
  return options_.work_dir + "/.results/" + SafePathPart(job_id) + ".job";
}

StatusOr<std::string> SiteData::PrepareWorkspace(const std::string& job_id) {
  const std::string workspace = WorkspaceFor(job_id);
  std::error_code error;
  fs::create_directories(workspace + "/output", error);
  if (error) {
    return FailedPreconditionError("cannot create " + workspace + ": " +
                                   error.message());
  }
  return workspace;
}

Status SiteData::CheckOffer(const v1::PlacementOffer& offer) const {
  uint64_t total = 0;
  for (const auto& input : offer.spec().inputs()) total += input.size();
  if (total > options_.max_input_bytes) {
    return ResourceExhaustedError(
        "the job's inputs (" + std::to_string(total) + " bytes) are over this "
        "site's limit of " + std::to_string(options_.max_input_bytes));
  }
  if (options_.max_work_bytes > 0 && bytes_used_ > options_.max_work_bytes) {
    return ResourceExhaustedError(
        "site storage full: " + std::to_string(bytes_used_) + " bytes in " +
        options_.work_dir + ", over its quota of " +
        std::to_string(options_.max_work_bytes));
  }
  return OkStatus();
}

void SiteData::BeginFetch(const v1::PlacementOffer& offer) {
  Fetch fetch;
  fetch.offer = offer;
  auto workspace = PrepareWorkspace(offer.job_id());
  if (!workspace.ok()) fetch.failed = workspace.status();
  fetches_[offer.job_id()] = std::move(fetch);
}

std::vector<SiteData::ChunkRequest> SiteData::Due(int64_t now_ms) {
  std::vector<ChunkRequest> due;
  for (auto it = fetches_.begin(); it != fetches_.end();) {
    Fetch& fetch = it->second;
    if (fetch.failed.ok() && !fetch.done) {
      if (fetch.request_id != 0 && now_ms - fetch.sent_ms < kChunkTimeoutMs) {
        ++it;
        continue;
      }
      if (now_ms < fetch.retry_at_ms) {
        ++it;
        continue;
      }
      // The first input not complete here, from where it stands.
      const v1::InputBundle* next = nullptr;
      uint64_t offset = 0;
      for (const auto& input : fetch.offer.spec().inputs()) {
        auto progress = inputs_->Stat(input.digest());
        if (!progress.ok()) {
          fetch.failed = progress.status();
          break;
        }
        if (progress->complete) continue;
        next = &input;
        offset = progress->have;
        break;
      }
      if (fetch.failed.ok() && next == nullptr) fetch.done = true;
      if (fetch.failed.ok() && next != nullptr) {
        ChunkRequest request;
        request.request_id = ++next_request_id_;
        request.body.set_job_id(fetch.offer.job_id());
        request.body.set_digest(next->digest());
        request.body.set_offset(offset);
        fetch.request_id = request.request_id;
        fetch.sent_ms = now_ms;
        due.push_back(std::move(request));
      }
    }
    if (!fetch.failed.ok() || fetch.done) {
      const std::string job_id = it->first;
      Finish(job_id, fetch);
      it = fetches_.erase(it);
      continue;
    }
    ++it;
  }
  return due;
}

void SiteData::Finish(const std::string& job_id, Fetch& fetch) {
  Prepared prepared;
  prepared.offer = fetch.offer;
  prepared.status = fetch.failed;
  if (prepared.status.ok()) {
    const std::string workspace = WorkspaceFor(job_id);
    bundles::ArchiveLimits limits;
    limits.max_bytes = std::max<uint64_t>(options_.max_input_bytes, 1) * 4;
    for (const auto& input : fetch.offer.spec().inputs()) {
      Status unpacked = bundles::Unpack(inputs_->PathOf(input.digest()),
                                        workspace, limits);
      if (!unpacked.ok()) {
        prepared.status = unpacked.WithContext("input " + input.digest());
        break;
      }
    }
  }
  if (!prepared.status.ok()) {
    prepared.status = prepared.status.WithContext("inputs");
  }
  prepared_.push_back(std::move(prepared));
}

void SiteData::OnChunkReply(const v1::Envelope& envelope, int64_t now_ms) {
  for (auto& [job_id, fetch] : fetches_) {
    if (fetch.request_id == 0 || fetch.request_id != envelope.request_id()) {
      continue;
    }
    fetch.request_id = 0;
    const Status status = StatusFromProto(envelope.status());
    if (status.code() == StatusCode::kUnavailable ||
        status.code() == StatusCode::kResourceExhausted) {
      fetch.retry_at_ms = now_ms + kRetryMs;  // the next Due() asks again
      return;
    }
    if (!status.ok()) {
      fetch.failed = status;
      return;
    }
    auto reply = DecodeBody<v1::GetBundleChunkReply>(envelope);
    if (!reply.ok()) {
      fetch.failed = reply.status();
      return;
    }
    const v1::InputBundle* input = nullptr;
    for (const auto& candidate : fetch.offer.spec().inputs()) {
      if (candidate.digest() == reply->digest()) input = &candidate;
    }
    if (input == nullptr || reply->total_size() != input->size()) {
      fetch.failed = DataLossError("the broker sent a chunk of another "
                                   "bundle or size than the job's input");
      return;
    }
    if (reply->data().empty() && reply->offset() < reply->total_size()) {
      fetch.failed = DataLossError("the broker sent an empty chunk");
      return;
    }
    auto progress = inputs_->Append(reply->digest(), reply->total_size(),
                                    reply->offset(), reply->data());
    if (!progress.ok() && progress.status().code() != StatusCode::kOutOfRange) {
      fetch.failed = progress.status();
    }
    return;
  }
}

void SiteData::Reconnected() {
  for (auto& [job_id, fetch] : fetches_) fetch.request_id = 0;
}

std::vector<SiteData::Prepared> SiteData::TakePrepared() {
  std::vector<Prepared> out;
  out.swap(prepared_);
  return out;
}

StatusOr<bundles::PackedBundle> SiteData::PackResult(const std::string& job_id) {
  const std::string output = WorkspaceFor(job_id) + "/output";
  std::error_code error;
  if (!fs::is_directory(output, error)) {
    return NotFoundError("the job left no output directory");
  }
  bundles::ArchiveLimits limits;
  limits.max_bytes = options_.max_result_bytes;
  const std::string packed = options_.work_dir + "/.results/" + SafePathPart(job_id) + ".tar.tmp";
  CN_ASSIGN_OR_RETURN(bundles::PackedBundle bundle,
                      bundles::PackDirectoryContents(output, packed, limits));
  CN_RETURN_IF_ERROR(results_->Adopt(packed, bundle.digest));
  CN_RETURN_IF_ERROR(WriteFileAtomically(ResultNote(job_id), bundle.digest, 0600));
  bundle.path = results_->PathOf(bundle.digest);
  return bundle;
}

v1::ResultChunk SiteData::ServeResult(const v1::ResultChunkRequest& request) const {
  v1::ResultChunk chunk;
  chunk.set_relay_id(request.relay_id());
  chunk.set_job_id(request.job_id());
  chunk.set_offset(request.offset());
  auto digest = ReadFileToString(ResultNote(request.job_id()), 128);
  Status status = digest.ok() ? OkStatus()
                              : NotFoundError("no result of job " +
                                              request.job_id().substr(0, 128) +
                                              " is kept at this site");
  if (status.ok()) {
    auto progress = results_->Stat(*digest);
    if (!progress.ok() || !progress->complete) {
      status = NotFoundError("the result of job " + request.job_id() +
                             " is no longer kept (retention)");
    } else {
      auto data = results_->Read(*digest, request.offset(), bundles::kChunkBytes);
      if (!data.ok()) {
        status = data.status();
      } else {
        chunk.set_digest(*digest);
        chunk.set_total_size(progress->total);
        chunk.set_data(std::move(*data));
      }
    }
  }
  *chunk.mutable_status() = StatusToProto(status);
  return chunk;
}

void SiteData::Upkeep(int64_t now_ms, const std::vector<std::string>& active) {
  if (now_ms < next_upkeep_ms_) return;
  next_upkeep_ms_ = now_ms + kUpkeepMs;
  std::set<std::string> keep;
  for (const auto& job_id : active) keep.insert(SafePathPart(job_id));
  for (const auto& [job_id, fetch] : fetches_) keep.insert(SafePathPart(job_id));
  std::set<std::string> needed_inputs;
  for (const auto& [job_id, fetch] : fetches_) {
    for (const auto& input : fetch.offer.spec().inputs()) {
      needed_inputs.insert(input.digest());
    }
  }
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(options_.work_dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || keep.count(name) != 0) continue;
    if (!entry.is_directory(error)) continue;
    if (AgeMs(entry.path(), now_ms) > options_.retention_ms) {
      fs::remove_all(entry.path(), error);
      spdlog::info("removed {} (older than the retention)", entry.path().string());
    }
  }
  for (const char* sub : {"/.results", "/.bundles"}) {
    const fs::path dir = options_.work_dir + sub;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      const std::string name = entry.path().filename().string();
      if (needed_inputs.count(name) != 0) continue;
      if (AgeMs(entry.path(), now_ms) > options_.retention_ms) {
        fs::remove(entry.path(), error);
      }
    }
  }
  if (options_.max_work_bytes > 0) bytes_used_ = DirectoryBytes(options_.work_dir);
}

}  // namespace computenet::provider
