// Client: the consumer SDK. Submits jobs to the consumer's home broker over
// a CURVE-authenticated DEALER connection, and queries, waits for, cancels
// and lists them, and fetches the caller's ledger statement with proofs.
//
// Requests follow the ZeroMQ guide's Lazy Pirate pattern: a request without
// a reply within request_timeout_ms is sent again on a fresh connection, up
// to `retries` times, then fails with UNAVAILABLE ("broker unreachable at
// <endpoint> ..." if no connection came up, "no reply from broker at ..."
// if one did). Submit carries an idempotency key, so a retried submit never
// creates a second job. Failures that no retry can fix end the call at once
// (they show on the socket monitor within a handshake or two, long before
// the timeout; DealerChannel::ConnectionError):
//  - UNAUTHENTICATED "key refused by the broker at <endpoint> (ZAP status
//    400)": this key is not enrolled at that broker, or was revoked. (The
//    broker did not authenticate the caller, which is UNAUTHENTICATED in
//    gRPC's terms; PERMISSION_DENIED stays for an enrolled key asking for
//    what its role may not do.)
//  - FAILED_PRECONDITION "handshake with <endpoint> failed: ...": the pinned
//    broker_public_key is not that broker's key, or the endpoint is not a
//    ComputeNet broker: fix the configuration first.
// The next call tries a new connection (the key may be enrolled by then).
//
// Thread safety: a Client owns one socket and is not thread-safe; use one
// Client per thread.
#ifndef COMPUTENET_CONSUMER_CLIENT_H_
#define COMPUTENET_CONSUMER_CLIENT_H_

#include "computenet/bundles/bundle_archive.h"
#include "computenet/v1/bundle.pb.h"
#include "computenet/v1/provider.pb.h"

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "computenet/common/identity.h"
#include "computenet/common/status.h"
#include "computenet/common/transport.h"
#include "computenet/v1/consumer.pb.h"
#include "computenet/v1/ledger.pb.h"
#include "computenet/v1/peer.pb.h"

namespace computenet::consumer {

struct ClientOptions {
  std::string broker_endpoint;    // Required.
  std::string broker_public_key;  // the broker's CURVE key (Z85). Required.
  // How long to wait for each reply. Default 5 s.
  int request_timeout_ms = 5000;
  // Extra attempts after a timeout. Default 2.
  int retries = 2;
};

// Live logs: what StreamLogs reads (docs/sdk.md, "Live logs").
struct LogOptions {
  std::string node;                                   // empty = every node
  v1::LogStream stream = v1::LOG_STREAM_UNSPECIFIED;  // UNSPECIFIED = both
  // Start each stream at its last tail_lines lines (of what the broker
  // holds); 0 = from the oldest byte it holds.
  uint32_t tail_lines = 0;
  // Keep reading until the job ended and every stream was read to its end
  // (kubectl logs -f); false = what is there now, then return.
  bool follow = false;
  int poll_ms = 200;  // between reads while following and caught up
  // With follow: DEADLINE_EXCEEDED after this long; 0 = no limit.
  int timeout_ms = 0;
};

class Client {
 public:
  // INVALID_ARGUMENT on a missing endpoint or a bad key. Connecting happens
  // in the background; an unreachable broker shows up as UNAVAILABLE on the
  // first request, a refused key or a wrong broker key as above.
  static StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options,
                                                   Identity identity);

  // Submits a job. An empty idempotency_key gets a random one. Returns the
  // broker's reply (job id, state); INVALID_ARGUMENT for an impossible spec.
  StatusOr<v1::SubmitJobReply> Submit(const v1::JobSpec& spec,
                                      std::string idempotency_key = "");
  // NOT_FOUND if the job does not exist or is not the caller's.
  StatusOr<v1::JobInfo> GetJob(const std::string& job_id);
  // FAILED_PRECONDITION if the job already ended.
  StatusOr<v1::CancelJobReply> Cancel(const std::string& job_id);
  StatusOr<std::vector<v1::JobInfo>> ListJobs(
      uint32_t limit = 100, const std::vector<v1::JobState>& states = {});

  // Admins only (PERMISSION_DENIED otherwise): peers, link state, received
  // adverts and forwarded jobs.
  StatusOr<v1::GetFederationStatusReply> GetFederationStatus();

  // One page of the caller's ledger lines (a provider's key gets the
  // provider's account; an admin may name any account), each with its
  // inclusion proof against the signed checkpoint in the reply. Check them
  // with VerifyCheckpoint/VerifyStatementLine (computenet/common/
  // checkpoint.h) and the broker's public key. PERMISSION_DENIED for
  // another party's account.
  StatusOr<v1::GetStatementReply> GetStatement(const v1::GetStatement& request);

  // Blocks until the job reaches a terminal state and returns it;
  // DEADLINE_EXCEEDED after timeout_ms. on_change (optional) sees every state
  // the job moves through, from the broker's event stream.
  StatusOr<v1::JobInfo> Wait(
      const std::string& job_id, int timeout_ms,
      const std::function<void(const v1::JobInfo&)>& on_change = nullptr);

  // The steps Wait is made of, for callers that want each change as it
  // comes (the Python SDK's job.events()). WatchJob subscribes this
  // connection to the job's events and returns its state now. NextChange
  // then blocks until the job's state differs from current's and returns
  // the job as it is then, or nullopt after timeout_ms without a change.
  // Changes are returned one at a time, in the order the broker sent them;
  // events for other jobs on this connection are dropped.
  StatusOr<v1::JobInfo> WatchJob(const std::string& job_id);
  StatusOr<std::optional<v1::JobInfo>> NextChange(const v1::JobInfo& current,
                                                  int timeout_ms);

  // Every change of every job of the caller (an admin: of every job), for
  // `computenet watch`. WatchAll subscribes this connection; NextEvent
  // returns the next changed job as the broker sent it, or nullopt after
  // timeout_ms without one (the subscription is renewed then, so a
  // reconnect loses events for at most that long).
  Status WatchAll();
  StatusOr<std::optional<v1::JobInfo>> NextEvent(int timeout_ms);

  // Inputs and results (docs/sdk.md "Inputs and results").
  //
  // Uploads a packed bundle (computenet/bundles/bundle_archive.h) to the
  // home broker in chunks, for jobs allowed in allowed_regions (empty =
  // any): a home broker outside them relays it to the brokers of those
  // regions and keeps none of it. Resumes where the broker stands, so a
  // bundle uploaded before costs one round trip. Returns the input to put
  // in JobSpec.inputs. RESOURCE_EXHAUSTED past the broker's limits (before
  // a byte is sent); DATA_LOSS if the bytes do not hash to the digest;
  // UNAVAILABLE if a broker of an allowed region is unreachable.
  StatusOr<v1::InputBundle> UploadBundle(
      const bundles::PackedBundle& bundle,
      const std::vector<std::string>& allowed_regions);
  // Packs paths (files or directories; each lands in the job's working
  // directory under its own name) into a temporary bundle and uploads it.
  // INVALID_ARGUMENT for a missing path or a special file; as UploadBundle.
  StatusOr<v1::InputBundle> UploadInputs(
      const std::vector<std::string>& paths,
      const std::vector<std::string>& allowed_regions);

  // The job's result, downloaded and checked.
  struct FetchedResult {
    std::string digest;
    uint64_t size = 0;
    std::string archive;     // the downloaded bundle file
    v1::UsageRecord record;  // the provider-signed record that names it
  };
  // Downloads the job's result into archive_file and checks it: the
  // provider's signature over its closing usage record, and that the
  // bytes hash to the digest that record names. FAILED_PRECONDITION if the
  // job has no result (yet); NOT_FOUND for another consumer's job;
  // UNAVAILABLE if the site that keeps it is offline; DATA_LOSS naming both
  // digests on a mismatch (the file is removed then).
  StatusOr<FetchedResult> FetchResult(const std::string& job_id,
                                      const std::string& archive_file);
  // FetchResult, then unpacks it into out_dir (created).
  StatusOr<FetchedResult> FetchResultInto(const std::string& job_id,
                                          const std::string& out_dir);
  // Live logs. One read of the job's output as its home broker holds it,
  // from the request's cursors (GetJobLogs). NOT_FOUND if the job does not
  // exist or is not the caller's.
  StatusOr<v1::GetJobLogsReply> GetLogs(const v1::GetJobLogs& request);
  // Reads the job's output and hands every chunk to on_chunk, in order per
  // stream (a chunk's skipped() says how many bytes before it are no longer
  // held); polls while options.follow, until the job's logs are complete.
  // on_chunk returning false stops early (OK). Returns the job's state at
  // the last read.
  StatusOr<v1::JobState> StreamLogs(
      const std::string& job_id, const LogOptions& options,
      const std::function<bool(const v1::LogChunk&)>& on_chunk);

 private:
  Client(ClientOptions options, Identity identity)
      : options_(std::move(options)),
        identity_(std::move(identity)),
        context_(1) {}
  Status Reconnect();
  // GetJob, dropping the job's queued events (none is newer than the reply).
  StatusOr<v1::JobInfo> FreshJob(const std::string& job_id);
  // Sends a request and waits for the reply envelope, retrying as above.
  // Returns the reply's status if it is not OK.
  StatusOr<v1::Envelope> Call(v1::MessageType type,
                              const google::protobuf::MessageLite& body,
                              v1::MessageType reply_type);

  ClientOptions options_;
  Identity identity_;
  zmq::context_t context_;
  std::unique_ptr<DealerChannel> channel_;
  // A call reported channel_'s ConnectionError(): the next one connects
  // anew (the key may have been enrolled since).
  bool renew_channel_ = false;
  std::deque<v1::JobEvent> events_;  // arrived while waiting for replies
};

}  // namespace computenet::consumer

#endif  // COMPUTENET_CONSUMER_CLIENT_H_
