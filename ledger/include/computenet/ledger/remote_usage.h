// Remote usage: a provider's signed usage record for a job forwarded from
// another broker, as the remote broker countersigns it and the home broker
// (and any auditor of the home ledger) checks it. Trust is hierarchical: the
// home broker never knows the remote broker's providers, only the remote
// broker's pinned key.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_LEDGER_REMOTE_USAGE_H_
#define COMPUTENET_LEDGER_REMOTE_USAGE_H_

#include <string>

#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"
#include "computenet/v1/peer.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::ledger {

inline constexpr char kRemoteUsageDomain[] = "computenet.v1.RemoteUsage";

// Fills usage->broker_signature. INTERNAL if signing fails.
Status SignRemoteUsage(const SigningKey& key, v1::RemoteUsage* usage);

// Checks the countersignature under the remote broker's pinned key (hex),
// and that the embedded record parses, names the same job, covers at least
// the billed card-seconds, and that the amount follows the rounding rule.
// Returns the embedded record. UNAUTHENTICATED for a bad signature,
// INVALID_ARGUMENT for inconsistent contents.
StatusOr<v1::UsageRecord> VerifyRemoteUsage(const std::string& public_key_hex,
                                            const v1::RemoteUsage& usage);

}  // namespace computenet::ledger

#endif  // COMPUTENET_LEDGER_REMOTE_USAGE_H_
