#include "core/imports.h"
#include "computenet/broker/broker_config.h"

#include <filesystem>
#include <set>
#include <sstream>
#include <type_traits>
#include <toml++/toml.h>

#include "computenet/common/config_file.h"
#include "computenet/common/files.h"

namespace computenet::broker {
namespace {

template <typename T>
Status Get(const toml::table& table, const std::string& key,
           const std::string& where, bool required, T* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return required ? InvalidArgumentError(where + ": missing '" + key + "'")
                    : OkStatus();
  }
  auto value = node->value_exact<T>();
  if (!value) {
    const char* expected = "a number";
    if constexpr (std::is_same_v<T, std::string>) expected = "a string";
    if constexpr (std::is_same_v<T, bool>) expected = "true or false";
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      expected = "an integer";
    }
    const auto line = node->source().begin.line;
    return InvalidArgumentError(
        where + ": '" + key + "'" +
        (line > 0 ? " at line " + std::to_string(line) : std::string()) +
        " must be " + expected);
  }
  *out = *value;
  return OkStatus();
}

}  // namespace

StatusOr<BrokerConfig> LoadBrokerConfig(const std::string& path) {
  CN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 1 << 20));
  const std::string base = std::filesystem::absolute(path).parent_path().string();
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << path << ": " << error.description() << " at line "
        << error.source().begin.line;
    return InvalidArgumentError(out.str());
  }
  const std::string where = path;
  CN_RETURN_IF_ERROR(CheckKeys(
      root,
      {"broker_id", "region", "endpoint", "endpoint_file", "database", "keys",
       "heartbeat_ms", "liveness", "forward_margin_bp", "fee_bps",
       "settlement_interval_ms", "replication_interval_ms", "checkpoint_every",
       "checkpoint_interval_ms", "preemption", "decline_retry_ms",
       "max_decline_retry_ms", "lost_job_timeout_ms",
       "max_unfinished_jobs_per_consumer", "metrics_address", "peers",
       "bundle_dir", "max_bundle_bytes", "max_input_bytes_per_job",
       "max_bundle_bytes_per_consumer", "bundle_retention_s"},
      where));
  BrokerConfig config;
  BrokerOptions& options = config.options;
  CN_RETURN_IF_ERROR(Get(root, "broker_id", where, true, &options.broker_id));
  CN_RETURN_IF_ERROR(Get(root, "region", where, true, &options.region));
  CN_RETURN_IF_ERROR(Get(root, "endpoint", where, true, &options.endpoint));
  CN_RETURN_IF_ERROR(
      Get(root, "endpoint_file", where, false, &config.endpoint_file));
  CN_RETURN_IF_ERROR(
      Get(root, "database", where, true, &options.database_path));
  CN_RETURN_IF_ERROR(Get(root, "keys", where, true, &config.keys_dir));
  int64_t heartbeat = options.heartbeat_interval_ms;
  int64_t liveness = options.heartbeat_liveness;
  CN_RETURN_IF_ERROR(Get(root, "heartbeat_ms", where, false, &heartbeat));
  CN_RETURN_IF_ERROR(Get(root, "liveness", where, false, &liveness));
  CN_RETURN_IF_ERROR(Get(root, "forward_margin_bp", where, false,
                         &options.forward_margin_bp));
  int64_t fee_bps = options.fee_bps;
  CN_RETURN_IF_ERROR(Get(root, "fee_bps", where, false, &fee_bps));
  if (fee_bps < 0 || fee_bps > 10'000) {
    return InvalidArgumentError(where + ": fee_bps must be 0..10000");
  }
  options.fee_bps = static_cast<uint32_t>(fee_bps);
  CN_RETURN_IF_ERROR(Get(root, "settlement_interval_ms", where, false,
                         &options.settlement_interval_ms));
  if (options.settlement_interval_ms < 10) {
    return InvalidArgumentError(where + ": settlement_interval_ms below 10");
  }
  CN_RETURN_IF_ERROR(Get(root, "replication_interval_ms", where, false,
                         &options.replication_interval_ms));
  if (options.replication_interval_ms < 10) {
    return InvalidArgumentError(where + ": replication_interval_ms below 10");
  }
  int64_t checkpoint_every = static_cast<int64_t>(options.checkpoint_every_entries);
  CN_RETURN_IF_ERROR(Get(root, "checkpoint_every", where, false, &checkpoint_every));
  if (checkpoint_every < 1) {
    return InvalidArgumentError(where + ": checkpoint_every must be >= 1");
  }
  options.checkpoint_every_entries = static_cast<uint64_t>(checkpoint_every);
  CN_RETURN_IF_ERROR(Get(root, "checkpoint_interval_ms", where, false,
                         &options.checkpoint_interval_ms));
  int64_t lost_job_timeout = options.lost_job_timeout_ms;
  CN_RETURN_IF_ERROR(
      Get(root, "lost_job_timeout_ms", where, false, &lost_job_timeout));
  if (lost_job_timeout < 100 || lost_job_timeout > 7LL * 24 * 3600 * 1000) {
    return InvalidArgumentError(where +
                                ": lost_job_timeout_ms must be 100..604800000 (7 days)");
  }
  options.lost_job_timeout_ms = static_cast<int>(lost_job_timeout);
  int64_t max_unfinished = options.max_unfinished_jobs_per_consumer;
  CN_RETURN_IF_ERROR(Get(root, "max_unfinished_jobs_per_consumer", where, false,
                         &max_unfinished));
  if (max_unfinished < 0 || max_unfinished > 100'000'000) {
    return InvalidArgumentError(
        where + ": max_unfinished_jobs_per_consumer must be 0..100000000 (0 = no limit)");
  }
  options.max_unfinished_jobs_per_consumer = static_cast<uint32_t>(max_unfinished);
  CN_RETURN_IF_ERROR(
      Get(root, "metrics_address", where, false, &options.metrics_address));
  CN_RETURN_IF_ERROR(Get(root, "bundle_dir", where, false, &options.bundle_dir));
  if (!options.bundle_dir.empty()) {
    options.bundle_dir = ResolvePath(base, options.bundle_dir);
  }
  for (auto [key, target] : {std::pair{"max_bundle_bytes", &options.max_bundle_bytes},
                             std::pair{"max_input_bytes_per_job",
                                       &options.max_input_bytes_per_job},
                             std::pair{"max_bundle_bytes_per_consumer",
                                       &options.max_bundle_bytes_per_consumer}}) {
    int64_t value = static_cast<int64_t>(*target);
    CN_RETURN_IF_ERROR(Get(root, key, where, false, &value));
    if (value < 0 || (value == 0 && std::string(key) == "max_bundle_bytes")) {
      return InvalidArgumentError(where + ": " + key +
                                  " must be a positive number of bytes");
    }
    *target = static_cast<uint64_t>(value);
  }
  int64_t retention_s = options.bundle_retention_ms / 1000;
  CN_RETURN_IF_ERROR(Get(root, "bundle_retention_s", where, false, &retention_s));
  if (retention_s < 60 || retention_s > int64_t{366} * 86'400) {
    return InvalidArgumentError(where + ": bundle_retention_s must be 60..31622400");
  }
  options.bundle_retention_ms = retention_s * 1000;
  CN_RETURN_IF_ERROR(Get(root, "decline_retry_ms", where, false,
                         &options.decline_retry_ms));
  CN_RETURN_IF_ERROR(Get(root, "max_decline_retry_ms", where, false,
                         &options.max_decline_retry_ms));
  if (options.decline_retry_ms < 10 ||
      options.max_decline_retry_ms < options.decline_retry_ms ||
      options.max_decline_retry_ms > 24LL * 3600 * 1000) {
    return InvalidArgumentError(
        where + ": need 10 <= decline_retry_ms <= max_decline_retry_ms <= 86400000");
  }
  if (const toml::node* preemption = root.get("preemption")) {
    const std::string section = where + ": [preemption]";
    const toml::table* table = preemption->as_table();
    if (table == nullptr) return InvalidArgumentError(section + ": not a table");
    CN_RETURN_IF_ERROR(CheckKeys(
        *table, {"enabled", "grace_ms", "protect_after", "protection_s"}, section));
    CN_RETURN_IF_ERROR(
        Get(*table, "enabled", section, false, &options.priority_preemption));
    int64_t grace = options.preemption_grace_ms;
    int64_t protect_after = options.preemption.protect_after;
    int64_t protection_s = options.preemption.protection_ms / 1000;
    CN_RETURN_IF_ERROR(Get(*table, "grace_ms", section, false, &grace));
    CN_RETURN_IF_ERROR(Get(*table, "protect_after", section, false, &protect_after));
    CN_RETURN_IF_ERROR(Get(*table, "protection_s", section, false, &protection_s));
    if (grace < 0 || grace > options.max_reclaim_grace_ms) {
      return InvalidArgumentError(section + ": grace_ms must be 0.." +
                                  std::to_string(options.max_reclaim_grace_ms));
    }
    if (protect_after < 0 || protect_after > 1000) {
      return InvalidArgumentError(section + ": protect_after must be 0..1000");
    }
    if (protection_s < 0 || protection_s > 30LL * 24 * 3600) {
      return InvalidArgumentError(section + ": protection_s must be 0..2592000");
    }
    options.preemption_grace_ms = static_cast<int>(grace);
    options.preemption.protect_after = static_cast<uint32_t>(protect_after);
    options.preemption.protection_ms = protection_s * 1000;
  }
  if (heartbeat < 10 || heartbeat > 60000 || liveness < 1 || liveness > 100) {
    return InvalidArgumentError(where + ": heartbeat_ms/liveness out of range");
  }
  options.heartbeat_interval_ms = static_cast<int>(heartbeat);
  options.heartbeat_liveness = static_cast<int>(liveness);
  options.database_path = ResolvePath(base, options.database_path);
  config.keys_dir = ResolvePath(base, config.keys_dir);
  if (!config.endpoint_file.empty()) {
    config.endpoint_file = ResolvePath(base, config.endpoint_file);
  }
  if (const toml::node* peers = root.get("peers")) {
    const toml::array* list = peers->as_array();
    if (list == nullptr) return InvalidArgumentError(where + ": 'peers' must be [[peers]]");
    int index = 0;
    for (const auto& element : *list) {
      const std::string peer_where =
          where + ": peers[" + std::to_string(index++) + "]";
      const toml::table* table = element.as_table();
      if (table == nullptr) return InvalidArgumentError(peer_where + ": not a table");
      CN_RETURN_IF_ERROR(
          CheckKeys(*table,
                    {"broker_id", "region", "endpoint", "endpoint_file",
                     "identity", "next_identity"},
                    peer_where));
      PeerConfig peer;
      std::string identity_path;
      CN_RETURN_IF_ERROR(Get(*table, "broker_id", peer_where, true, &peer.broker_id));
      CN_RETURN_IF_ERROR(Get(*table, "region", peer_where, true, &peer.region));
      CN_RETURN_IF_ERROR(Get(*table, "endpoint", peer_where, false, &peer.endpoint));
      CN_RETURN_IF_ERROR(
          Get(*table, "endpoint_file", peer_where, false, &peer.endpoint_file));
      CN_RETURN_IF_ERROR(Get(*table, "identity", peer_where, true, &identity_path));
      if (peer.endpoint.empty() == peer.endpoint_file.empty()) {
        return InvalidArgumentError(peer_where +
                                    ": set exactly one of endpoint, endpoint_file");
      }
      if (!peer.endpoint_file.empty()) {
        peer.endpoint_file = ResolvePath(base, peer.endpoint_file);
      }
      CN_ASSIGN_OR_RETURN(PublicIdentity identity,
                          PublicIdentity::LoadFile(ResolvePath(base, identity_path)));
      if (identity.name != peer.broker_id) {
        return InvalidArgumentError(peer_where + ": identity file is for '" +
                                    identity.name + "', not '" +
                                    peer.broker_id + "'");
      }
      peer.curve_public = identity.curve_public;
      peer.ed25519_public = identity.ed25519_public;
      std::string next_path;
      CN_RETURN_IF_ERROR(
          Get(*table, "next_identity", peer_where, false, &next_path));
      if (!next_path.empty()) {
        CN_ASSIGN_OR_RETURN(
            PublicIdentity next,
            PublicIdentity::LoadFile(ResolvePath(base, next_path)));
        if (next.name != peer.broker_id) {
          return InvalidArgumentError(
              peer_where + ": next_identity file is for '" + next.name +
              "', not '" + peer.broker_id + "'");
        }
        if (next.ed25519_public != identity.ed25519_public) {
          return InvalidArgumentError(
              peer_where +
              ": next_identity must keep the peer's signing key (its ledger "
              "is bound to it); only the CURVE key rotates (computenet-broker "
              "keygen --rekey-from)");
        }
        if (next.curve_public == identity.curve_public) {
          return InvalidArgumentError(peer_where +
                                      ": next_identity has the same CURVE key "
                                      "as identity");
        }
        peer.next_curve_public = next.curve_public;
      }
      options.peers.push_back(std::move(peer));
    }
  }
  return config;
}

}  // namespace computenet::broker
