// BrokerConfig: a broker's configuration file (TOML), as a hub operator
// writes it for `computenet-broker run --config FILE`:
//
//   broker_id = "hub-north"            # prefix of global job ids
//   region = "north"
//   endpoint = "tcp://0.0.0.0:7700"
//   endpoint_file = "north.endpoint"   # optional: write the bound endpoint
//   database = "north.db"
//   keys = "keys/north"                # from `computenet-broker keygen`
//   heartbeat_ms = 1000                # optional
//   liveness = 3                       # optional
//   forward_margin_bp = 2000           # optional: 20%
//   lost_job_timeout_ms = 600000       # optional: jobs of a lost provider
//                                      #   fail after this
//   decline_retry_ms = 30000           # optional: a declined forward is
//   max_decline_retry_ms = 600000      #   tried again after this, doubling
//   [preemption]                       # optional (docs/matching.md, 8a)
//   enabled = true
//   grace_ms = 30000
//   protect_after = 2
//   protection_s = 3600
//   [[peers]]                          # pinned peer brokers
//   broker_id = "hub-east"
//   region = "east"
//   endpoint = "tcp://east.example:7700"  # or endpoint_file = "east.endpoint"
//   identity = "keys/east/identity.pub"   # pins its CURVE and Ed25519 keys
//
// Relative paths are relative to the file's directory; unknown keys are
// errors.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BROKER_BROKER_CONFIG_H_
#define COMPUTENET_BROKER_BROKER_CONFIG_H_

#include <string>

#include "computenet/broker/broker.h"
#include "computenet/common/status.h"

namespace computenet::broker {

struct BrokerConfig {
  BrokerOptions options;
  std::string keys_dir;
  std::string endpoint_file;
};

// INVALID_ARGUMENT naming the key at fault; NOT_FOUND for a missing file.
StatusOr<BrokerConfig> LoadBrokerConfig(const std::string& path);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_BROKER_CONFIG_H_
