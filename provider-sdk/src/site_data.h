// SiteData: the work's data at a site (docs/sdk.md "Inputs and results").
// Private to the agent. It
//  - fetches a job's input bundles from the broker in chunks (resumable:
//    what arrived is kept in <work_dir>/.bundles; a bundle the site already
//    has is not fetched again) and unpacks them into the job's workspace,
//    <work_dir>/<job>/workspace, before the job starts;
//  - packs the job's output directory (<workspace>/output) when it ends,
//    into <work_dir>/.results, for the closing usage record to name, and
//    serves it in chunks to the broker while it is kept;
//  - removes finished jobs' directories, results and cached inputs once
//    they are older than the retention, and refuses offers while the site's
//    data passes its quota.
// The agent's loop drives it; it never blocks on the network (it hands
// back the requests to send).
//
// Thread safety: not thread-safe; the agent's Run() thread only.
#ifndef COMPUTENET_PROVIDER_SITE_DATA_H_
#define COMPUTENET_PROVIDER_SITE_DATA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "computenet/bundles/bundle_archive.h"
#include "computenet/bundles/bundle_store.h"
#include "computenet/common/status.h"
#include "computenet/provider/agent.h"
#include "computenet/v1/bundle.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

class SiteData {
 public:
  // FAILED_PRECONDITION if the directories cannot be made.
  static StatusOr<std::unique_ptr<SiteData>> Open(const SiteDataOptions& options);

  // The job's working directory (with its output/ below it), created.
  std::string WorkspaceFor(const std::string& job_id) const;
  StatusOr<std::string> PrepareWorkspace(const std::string& job_id);

  // RESOURCE_EXHAUSTED when the offer's inputs are over max_input_bytes or
  // the site's data is over its quota.
  Status CheckOffer(const v1::PlacementOffer& offer) const;

  // Starts fetching the offer's inputs (its workspace is prepared first).
  void BeginFetch(const v1::PlacementOffer& offer);
  bool Fetching(const std::string& job_id) const {
    return fetches_.count(job_id) != 0;
  }
  void Cancel(const std::string& job_id) { fetches_.erase(job_id); }
  // A request to send to the broker (request id, body).
  struct ChunkRequest {
    uint64_t request_id = 0;
    v1::GetBundleChunk body;
  };
  // Requests due now: a first one, the next after a reply, or again after
  // a timeout or a reconnect.
  std::vector<ChunkRequest> Due(int64_t now_ms);
  // The broker's answer to one of ours (ignored if not ours).
  void OnChunkReply(const v1::Envelope& envelope, int64_t now_ms);
  // After a reconnect: requests in flight are sent again.
  void Reconnected();
  // Jobs whose inputs are all here and unpacked (OK) or cannot be (the
  // error says why, for the job's status).
  struct Prepared {
    v1::PlacementOffer offer;
    Status status;
  };
  std::vector<Prepared> TakePrepared();

  // Packs the job's output directory. The digest and size for the closing
  // record; an error (too large, unreadable) leaves the job without result.
  StatusOr<bundles::PackedBundle> PackResult(const std::string& job_id);
  // Answers the broker's ResultChunkRequest.
  v1::ResultChunk ServeResult(const v1::ResultChunkRequest& request) const;

  // Retention and quota upkeep; cheap to call on every tick (runs once a
  // minute). active: jobs not to touch.
  void Upkeep(int64_t now_ms, const std::vector<std::string>& active);

 private:
  explicit SiteData(SiteDataOptions options);
  struct Fetch {
    v1::PlacementOffer offer;
    uint64_t request_id = 0;  // 0 = none in flight
    int64_t sent_ms = 0;
    int64_t retry_at_ms = 0;
    Status failed;
    bool done = false;
  };
  std::string JobDir(const std::string& job_id) const;
  std::string ResultNote(const std::string& job_id) const;
  void Finish(const std::string& job_id, Fetch& fetch);

  SiteDataOptions options_;
  std::unique_ptr<bundles::BundleStore> inputs_;
  std::unique_ptr<bundles::BundleStore> results_;
  std::map<std::string, Fetch> fetches_;  // by job
  std::vector<Prepared> prepared_;
  uint64_t next_request_id_ = uint64_t{1} << 62;  // apart from the agent's
  int64_t next_upkeep_ms_ = 0;
  uint64_t bytes_used_ = 0;  // at the last upkeep
};

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SITE_DATA_H_
