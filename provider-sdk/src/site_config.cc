#include "computenet/provider/site_config.h"

#include <filesystem>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "computenet/common/config_file.h"
#include "computenet/common/files.h"
#include "computenet/common/identity.h"
#include "computenet/matching/site_policy.h"

namespace computenet::provider {
namespace {

StatusOr<std::string> GetString(const toml::table& table,
                                const std::string& key,
                                const std::string& where, bool required) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return InvalidArgumentError(where + ": missing '" + key + "'");
    return std::string();
  }
  auto value = node->value<std::string>();
  if (!value) return InvalidArgumentError(where + ": '" + key + "' must be a string");
  return *value;
}

StatusOr<int64_t> GetInt(const toml::table& table, const std::string& key,
                         const std::string& where, bool required,
                         int64_t minimum, int64_t maximum) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return InvalidArgumentError(where + ": missing '" + key + "'");
    return int64_t{0};
  }
  auto value = node->value_exact<int64_t>();
  if (!value) {
    return InvalidArgumentError(where + ": '" + key + "' must be an integer");
  }
  if (*value < minimum || *value > maximum) {
    return InvalidArgumentError(where + ": '" + key + "' must be in " +
                                std::to_string(minimum) + ".." +
                                std::to_string(maximum));
  }
  return *value;
}

StatusOr<std::vector<std::string>> GetStringArray(const toml::table& table,
                                                  const std::string& key,
                                                  const std::string& where) {
  std::vector<std::string> out;
  const toml::node* node = table.get(key);
  if (node == nullptr) return out;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    return InvalidArgumentError(where + ": '" + key +
                                "' must be an array of strings");
  }
  for (const auto& element : *array) {
    auto value = element.value<std::string>();
    if (!value) {
      return InvalidArgumentError(where + ": '" + key +
                                  "' must be an array of strings");
    }
    out.push_back(*value);
  }
  return out;
}

// [policy]: what the site accepts (two-sided matching, site_policy.h).
Status ParsePolicy(const toml::table& table, const std::string& where,
                   v1::SitePolicy* policy) {
  CN_RETURN_IF_ERROR(CheckKeys(table,
                               {"allowed_organizations", "denied_organizations",
                                "min_duration_s", "max_duration_s", "preemptible_only",
                                "max_gang_nodes", "network"},
                               where));
  CN_ASSIGN_OR_RETURN(auto allowed, GetStringArray(table, "allowed_organizations", where));
  for (auto& name : allowed) policy->add_allowed_organizations(std::move(name));
  CN_ASSIGN_OR_RETURN(auto denied, GetStringArray(table, "denied_organizations", where));
  for (auto& name : denied) policy->add_denied_organizations(std::move(name));
  constexpr int64_t kMaxSeconds = 30LL * 24 * 3600;
  CN_ASSIGN_OR_RETURN(int64_t min_s, GetInt(table, "min_duration_s", where, false, 0, kMaxSeconds));
  CN_ASSIGN_OR_RETURN(int64_t max_s, GetInt(table, "max_duration_s", where, false, 0, kMaxSeconds));
  CN_ASSIGN_OR_RETURN(int64_t gang, GetInt(table, "max_gang_nodes", where, false, 0, 100'000));
  policy->set_min_duration_s(static_cast<uint32_t>(min_s));
  policy->set_max_duration_s(static_cast<uint32_t>(max_s));
  policy->set_max_gang_nodes(static_cast<uint32_t>(gang));
  for (const char* key : {"preemptible_only", "network"}) {
    const toml::node* node = table.get(key);
    if (node == nullptr) continue;
    auto value = node->value<bool>();
    if (!value) return InvalidArgumentError(where + ": '" + key + "' must be true or false");
    if (std::string(key) == "preemptible_only") {
      policy->set_preemptible_only(*value);
    } else {
      policy->set_no_network(!*value);
    }
  }
  return matching::ValidateSitePolicy(*policy).WithContext(where);
}

Status ParseNode(const toml::table& table, const std::string& where,
                 bool require_accelerators, v1::Node* node) {
  CN_RETURN_IF_ERROR(CheckKeys(table,
                               {"name", "fabric", "cpu_cores", "memory_mib",
                                "spare", "offer", "accelerators"},
                               where));
  if (table.contains("spare") && table.contains("offer")) {
    return InvalidArgumentError(where + ": give 'spare' or 'offer', not both");
  }
  if (const toml::node* spare = table.get("spare")) {
    auto value = spare->value<bool>();
    if (!value) return InvalidArgumentError(where + ": 'spare' must be true or false");
    // Spare: reclaimable capacity for preemptible jobs, at the spare price.
    node->set_offer(*value ? v1::CAPACITY_OFFER_SPARE
                           : v1::CAPACITY_OFFER_DEDICATED);
  }
  if (const toml::node* offer = table.get("offer")) {
    auto value = offer->value<std::string>();
    if (value && *value == "dedicated") {
      node->set_offer(v1::CAPACITY_OFFER_DEDICATED);
    } else if (value && *value == "spare") {
      node->set_offer(v1::CAPACITY_OFFER_SPARE);
    } else if (value && *value == "withdrawn") {
      node->set_offer(v1::CAPACITY_OFFER_WITHDRAWN);
    } else {
      return InvalidArgumentError(
          where + ": 'offer' must be \"dedicated\", \"spare\" or \"withdrawn\"");
    }
  }
  CN_ASSIGN_OR_RETURN(*node->mutable_name(),
                      GetString(table, "name", where, true));
  CN_ASSIGN_OR_RETURN(*node->mutable_fabric_id(),
                      GetString(table, "fabric", where, false));
  CN_ASSIGN_OR_RETURN(int64_t cores, GetInt(table, "cpu_cores", where, false, 0, 1 << 20));
  CN_ASSIGN_OR_RETURN(int64_t memory,
                      GetInt(table, "memory_mib", where, false, 0, int64_t{1} << 40));
  node->set_cpu_cores(static_cast<uint32_t>(cores));
  node->set_memory_mib(static_cast<uint64_t>(memory));
  if (!require_accelerators && table.get("accelerators") == nullptr) {
    return OkStatus();
  }
  const toml::array* accelerators = table["accelerators"].as_array();
  if (accelerators == nullptr) {
    return InvalidArgumentError(where + ": 'accelerators' must be an array");
  }
  int index = 0;
  for (const auto& element : *accelerators) {
    std::string item_where =
        where + ".accelerators[" + std::to_string(index++) + "]";
    const toml::table* item = element.as_table();
    if (item == nullptr) return InvalidArgumentError(item_where + ": not a table");
    CN_RETURN_IF_ERROR(CheckKeys(
        *item,
        {"model", "memory_mib", "count", "measured_dense_gflops",
         "measurement", "vendor", "vendor_class"},
        item_where));
    auto* accelerator = node->add_accelerators();
    CN_ASSIGN_OR_RETURN(*accelerator->mutable_model(),
                        GetString(*item, "model", item_where, true));
    // The site's own benchmark of one card (FP16/BF16 dense GFLOPS), and
    // for models the broker's catalog lacks, who makes it and its class.
    CN_ASSIGN_OR_RETURN(int64_t measured,
                        GetInt(*item, "measured_dense_gflops", item_where,
                               false, 0, 100'000'000));
    accelerator->set_measured_dense_gflops(static_cast<uint64_t>(measured));
    CN_ASSIGN_OR_RETURN(*accelerator->mutable_measurement(),
                        GetString(*item, "measurement", item_where, false));
    CN_ASSIGN_OR_RETURN(*accelerator->mutable_vendor(),
                        GetString(*item, "vendor", item_where, false));
    CN_ASSIGN_OR_RETURN(*accelerator->mutable_vendor_class(),
                        GetString(*item, "vendor_class", item_where, false));
    CN_ASSIGN_OR_RETURN(int64_t card_memory,
                        GetInt(*item, "memory_mib", item_where, false, 0, int64_t{1} << 30));
    CN_ASSIGN_OR_RETURN(int64_t count, GetInt(*item, "count", item_where, true, 1, 64));
    accelerator->set_memory_mib(static_cast<uint64_t>(card_memory));
    accelerator->set_count(static_cast<uint32_t>(count));
  }
  return OkStatus();
}

Status ParseSlurm(const toml::table& table, const std::string& base_dir,
                  SlurmSiteConfig* slurm) {
  const std::string where = "[slurm]";
  CN_RETURN_IF_ERROR(CheckKeys(
      table,
      {"partition", "account", "gres_name", "extra_sbatch_args",
       "poll_interval_ms", "command_timeout_ms", "shareable_partitions",
       "bin_dir", "conf", "jobcomp_file", "model", "card_memory_mib"},
      where));
  CN_ASSIGN_OR_RETURN(slurm->partition, GetString(table, "partition", where, false));
  CN_ASSIGN_OR_RETURN(slurm->account, GetString(table, "account", where, false));
  if (table.get("gres_name") != nullptr) {
    CN_ASSIGN_OR_RETURN(slurm->gres_name, GetString(table, "gres_name", where, true));
    if (slurm->gres_name.empty()) {
      return InvalidArgumentError(where + ": 'gres_name' must not be empty");
    }
  }
  CN_ASSIGN_OR_RETURN(slurm->extra_sbatch_args,
                      GetStringArray(table, "extra_sbatch_args", where));
  if (table.get("poll_interval_ms") != nullptr) {
    CN_ASSIGN_OR_RETURN(int64_t interval,
                        GetInt(table, "poll_interval_ms", where, true, 50, 600'000));
    slurm->poll_interval_ms = static_cast<int>(interval);
  }
  if (table.get("command_timeout_ms") != nullptr) {
    CN_ASSIGN_OR_RETURN(int64_t timeout,
                        GetInt(table, "command_timeout_ms", where, true, 100, 600'000));
    slurm->command_timeout_ms = static_cast<int>(timeout);
  }
  CN_ASSIGN_OR_RETURN(slurm->shareable_partitions,
                      GetStringArray(table, "shareable_partitions", where));
  CN_ASSIGN_OR_RETURN(std::string bin_dir, GetString(table, "bin_dir", where, false));
  slurm->bin_dir = ResolvePath(base_dir, bin_dir);
  CN_ASSIGN_OR_RETURN(std::string conf, GetString(table, "conf", where, false));
  slurm->conf = ResolvePath(base_dir, conf);
  CN_ASSIGN_OR_RETURN(std::string jobcomp, GetString(table, "jobcomp_file", where, false));
  slurm->jobcomp_file = ResolvePath(base_dir, jobcomp);
  CN_ASSIGN_OR_RETURN(slurm->model, GetString(table, "model", where, false));
  CN_ASSIGN_OR_RETURN(int64_t memory, GetInt(table, "card_memory_mib", where, false,
                                             0, int64_t{1} << 30));
  slurm->card_memory_mib = static_cast<uint64_t>(memory);
  return OkStatus();
}

StatusOr<std::string> GetChoice(const toml::table& table, const std::string& key,
                                const std::string& fallback,
                                const std::set<std::string>& choices) {
  CN_ASSIGN_OR_RETURN(std::string value, GetString(table, key, "site config", false));
  if (value.empty()) return fallback;
  if (choices.count(value) == 0) {
    std::string list;
    for (const auto& choice : choices) list += (list.empty() ? "" : ", ") + choice;
    return InvalidArgumentError("site config: '" + key + "' must be one of " +
                                list + ", not '" + value + "'");
  }
  return value;
}

// [sandbox]: how the process executor fences jobs (sandbox.h).
Status ParseSandbox(const toml::table& table, const std::string& base_dir,
                    SandboxOptions* sandbox) {
  const std::string where = "[sandbox]";
  CN_RETURN_IF_ERROR(CheckKeys(table,
                               {"mode", "bwrap", "read_only_paths",
                                "writable_paths", "hidden_paths", "device_dir",
                                "memory_mib_per_card", "pids_max",
                                "allow_network", "cgroup_parent"},
                               where));
  CN_ASSIGN_OR_RETURN(std::string mode, GetString(table, "mode", where, false));
  if (mode == "none") {
    sandbox->mode = SandboxOptions::Mode::kNone;
  } else if (mode.empty() || mode == "bwrap") {
    sandbox->mode = SandboxOptions::Mode::kBwrap;
  } else {
    return InvalidArgumentError(where + ": 'mode' must be \"bwrap\" or "
                                "\"none\", not '" + mode + "'");
  }
  CN_ASSIGN_OR_RETURN(std::string bwrap, GetString(table, "bwrap", where, false));
  if (!bwrap.empty()) sandbox->bwrap_path = ResolvePath(base_dir, bwrap);
  for (const char* key :
       {"read_only_paths", "writable_paths", "hidden_paths"}) {
    CN_ASSIGN_OR_RETURN(auto paths, GetStringArray(table, key, where));
    for (const auto& path : paths) {
      // Relative paths would mean something else inside the sandbox.
      if (path.empty() || path[0] != '/') {
        return InvalidArgumentError(where + ": '" + key +
                                    "' takes absolute paths, not '" + path +
                                    "'");
      }
    }
    if (std::string(key) == "read_only_paths") {
      if (table.contains(key) && paths.empty()) {
        return InvalidArgumentError(
            where + ": 'read_only_paths' is empty: nothing could run");
      }
      sandbox->read_only_paths = std::move(paths);
    } else if (std::string(key) == "writable_paths") {
      sandbox->writable_paths = std::move(paths);
    } else {
      sandbox->hidden_paths = std::move(paths);
    }
  }
  CN_ASSIGN_OR_RETURN(std::string device_dir,
                      GetString(table, "device_dir", where, false));
  if (!device_dir.empty()) sandbox->device_dir = ResolvePath(base_dir, device_dir);
  CN_ASSIGN_OR_RETURN(std::string cgroup_parent,
                      GetString(table, "cgroup_parent", where, false));
  sandbox->cgroup_parent = cgroup_parent;
  CN_ASSIGN_OR_RETURN(int64_t memory, GetInt(table, "memory_mib_per_card", where,
                                             false, 0, int64_t{1} << 30));
  sandbox->memory_mib_per_card = static_cast<uint64_t>(memory);
  if (table.contains("pids_max")) {
    CN_ASSIGN_OR_RETURN(int64_t pids, GetInt(table, "pids_max", where, true, 0,
                                             int64_t{1} << 22));
    sandbox->pids_max = static_cast<uint32_t>(pids);
  }
  if (const toml::node* allow = table.get("allow_network")) {
    auto value = allow->value<bool>();
    if (!value) {
      return InvalidArgumentError(where + ": 'allow_network' must be true or false");
    }
    sandbox->allow_network = *value;
  }
  return OkStatus();
}

}  // namespace

StatusOr<SiteConfig> ParseSiteConfig(const std::string& toml_text,
                                     const std::string& base_dir) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << "site config: " << error.description() << " at line "
        << error.source().begin.line;
    return InvalidArgumentError(out.str());
  }
  const std::string where = "site config";
  CN_RETURN_IF_ERROR(CheckKeys(
      root,
      {"broker_endpoint", "broker_identity", "broker_public_key",
       "identity_dir", "work_dir", "site", "region", "currency", "prices",
       "spare_prices", "nodes", "executor", "inventory", "slurm", "nvml",
       "usage_interval_s", "policy", "state_dir", "data", "sandbox"},
      where));
  SiteConfig config;
  CN_ASSIGN_OR_RETURN(config.broker_endpoint,
                      GetString(root, "broker_endpoint", where, true));
  CN_ASSIGN_OR_RETURN(std::string broker_identity,
                      GetString(root, "broker_identity", where, false));
  CN_ASSIGN_OR_RETURN(config.broker_public_key,
                      GetString(root, "broker_public_key", where, false));
  if (!broker_identity.empty()) {
    CN_ASSIGN_OR_RETURN(
        PublicIdentity broker,
        PublicIdentity::LoadFile(ResolvePath(base_dir, broker_identity)));
    config.broker_public_key = broker.curve_public;
  }
  if (config.broker_public_key.empty()) {
    return InvalidArgumentError(
        where + ": set broker_identity or broker_public_key");
  }
  CN_RETURN_IF_ERROR(ValidateCurveKey(config.broker_public_key));
  CN_ASSIGN_OR_RETURN(std::string identity_dir,
                      GetString(root, "identity_dir", where, true));
  config.identity_dir = ResolvePath(base_dir, identity_dir);
  CN_ASSIGN_OR_RETURN(std::string work_dir,
                      GetString(root, "work_dir", where, true));
  config.work_dir = ResolvePath(base_dir, work_dir);
  CN_ASSIGN_OR_RETURN(std::string state_dir,
                      GetString(root, "state_dir", where, false));
  config.state_dir = state_dir.empty() ? config.work_dir + "/state"
                                       : ResolvePath(base_dir, state_dir);
  config.data.work_dir = config.work_dir;
  if (const toml::table* data = root["data"].as_table()) {
    const std::string data_where = where + " [data]";
    CN_RETURN_IF_ERROR(CheckKeys(*data,
                                 {"max_input_bytes", "max_result_bytes",
                                  "retention_s", "max_work_bytes"},
                                 data_where));
    constexpr int64_t kMaxBytes = int64_t{1} << 50;
    if (data->contains("max_input_bytes")) {
      CN_ASSIGN_OR_RETURN(int64_t bytes, GetInt(*data, "max_input_bytes",
                                                data_where, true, 1, kMaxBytes));
      config.data.max_input_bytes = static_cast<uint64_t>(bytes);
    }
    if (data->contains("max_result_bytes")) {
      CN_ASSIGN_OR_RETURN(int64_t bytes, GetInt(*data, "max_result_bytes",
                                                data_where, true, 1, kMaxBytes));
      config.data.max_result_bytes = static_cast<uint64_t>(bytes);
    }
    if (data->contains("max_work_bytes")) {
      CN_ASSIGN_OR_RETURN(int64_t bytes, GetInt(*data, "max_work_bytes",
                                                data_where, true, 0, kMaxBytes));
      config.data.max_work_bytes = static_cast<uint64_t>(bytes);
    }
    if (data->contains("retention_s")) {
      CN_ASSIGN_OR_RETURN(int64_t seconds, GetInt(*data, "retention_s",
                                                  data_where, true, 60,
                                                  int64_t{366} * 86'400));
      config.data.retention_ms = seconds * 1000;
    }
  } else if (root.contains("data")) {
    return InvalidArgumentError(where + ": [data] must be a table");
  }
  if (root.contains("usage_interval_s")) {
    CN_ASSIGN_OR_RETURN(int64_t interval, GetInt(root, "usage_interval_s", where,
                                                 true, 0, 86'400));
    config.usage_interval_s = static_cast<uint32_t>(interval);
  }

  auto& registration = config.registration;
  CN_ASSIGN_OR_RETURN(*registration.mutable_site(),
                      GetString(root, "site", where, true));
  CN_ASSIGN_OR_RETURN(*registration.mutable_region(),
                      GetString(root, "region", where, true));
  CN_ASSIGN_OR_RETURN(*registration.mutable_currency(),
                      GetString(root, "currency", where, true));
  if (const toml::node* policy = root.get("policy")) {
    const toml::table* table = policy->as_table();
    if (table == nullptr) return InvalidArgumentError(where + ": [policy] must be a table");
    CN_RETURN_IF_ERROR(ParsePolicy(*table, where + ": policy", registration.mutable_policy()));
  }
  const toml::table* prices = root["prices"].as_table();
  if (prices == nullptr) {
    return InvalidArgumentError(where + ": [prices] table is required");
  }
  for (const auto& [model, value] : *prices) {
    auto price = value.value_exact<int64_t>();
    if (!price || *price < 0) {
      return InvalidArgumentError(where + ": prices." +
                                  std::string(model.str()) +
                                  " must be a non-negative integer (minor "
                                  "units per card-hour)");
    }
    auto* entry = registration.add_prices();
    entry->set_model(std::string(model.str()));
    entry->set_per_card_hour(*price);
  }
  if (const toml::node* spare = root.get("spare_prices")) {
    const toml::table* spare_prices = spare->as_table();
    if (spare_prices == nullptr) {
      return InvalidArgumentError(where + ": [spare_prices] must be a table");
    }
    for (const auto& [model, value] : *spare_prices) {
      auto price = value.value_exact<int64_t>();
      if (!price || *price < 0) {
        return InvalidArgumentError(where + ": spare_prices." +
                                    std::string(model.str()) +
                                    " must be a non-negative integer");
      }
      bool found = false;
      for (auto& entry : *registration.mutable_prices()) {
        if (entry.model() == model.str()) {
          entry.set_spare_per_card_hour(*price);
          found = true;
        }
      }
      if (!found) {
        return InvalidArgumentError(where + ": spare_prices." +
                                    std::string(model.str()) +
                                    " has no regular price in [prices]");
      }
    }
  }
  CN_ASSIGN_OR_RETURN(config.executor,
                      GetChoice(root, "executor", "process", {"process", "slurm"}));
  CN_ASSIGN_OR_RETURN(config.inventory, GetChoice(root, "inventory", "config",
                                                  {"config", "nvml", "slurm"}));
  if (const toml::node* slurm = root.get("slurm")) {
    if (slurm->as_table() == nullptr) {
      return InvalidArgumentError(where + ": [slurm] must be a table");
    }
    CN_RETURN_IF_ERROR(ParseSlurm(*slurm->as_table(), base_dir, &config.slurm));
  }
  if (const toml::node* nvml = root.get("nvml")) {
    const toml::table* table = nvml->as_table();
    if (table == nullptr) return InvalidArgumentError(where + ": [nvml] must be a table");
    CN_RETURN_IF_ERROR(CheckKeys(*table, {"library"}, "[nvml]"));
    CN_ASSIGN_OR_RETURN(std::string library,
                        GetString(*table, "library", "[nvml]", false));
    if (!library.empty()) {
      // A bare soname is for the dynamic loader's search; a path is a file.
      config.nvml_library =
          library.find('/') == std::string::npos ? library : ResolvePath(base_dir, library);
    }
  }
  // [sandbox]: bwrap unless "none" is chosen. Network follows [policy]
  // network unless allow_network says otherwise; a sandbox that allows no
  // network also tells the broker (policy), so such jobs are never placed
  // here only to be refused.
  config.sandbox.mode = SandboxOptions::Mode::kBwrap;
  config.sandbox.allow_network = !registration.policy().no_network();
  if (const toml::node* sandbox = root.get("sandbox")) {
    if (sandbox->as_table() == nullptr) {
      return InvalidArgumentError(where + ": [sandbox] must be a table");
    }
    CN_RETURN_IF_ERROR(
        ParseSandbox(*sandbox->as_table(), base_dir, &config.sandbox));
  }
  if (!config.sandbox.allow_network) {
    registration.mutable_policy()->set_no_network(true);
  }
  if (config.inventory == "slurm" && config.slurm.shareable_partitions.empty()) {
    return InvalidArgumentError(
        where + ": inventory = \"slurm\" needs [slurm] shareable_partitions");
  }

  const toml::node* nodes_node = root.get("nodes");
  const toml::array* nodes = root["nodes"].as_array();
  if (nodes_node != nullptr && nodes == nullptr) {
    return InvalidArgumentError(where + ": 'nodes' must be an array of tables");
  }
  const size_t node_count = nodes == nullptr ? 0 : nodes->size();
  if (config.inventory == "config" && node_count == 0) {
    return InvalidArgumentError(where + ": at least one [[nodes]] is required");
  }
  if (config.inventory == "nvml" && node_count > 1) {
    return InvalidArgumentError(
        where + ": inventory = \"nvml\" describes this one machine: at most one "
                "[[nodes]]");
  }
  if (config.inventory == "slurm" && node_count > 0) {
    return InvalidArgumentError(
        where + ": inventory = \"slurm\" takes its nodes from Slurm: remove "
                "[[nodes]]");
  }
  int index = 0;
  for (size_t i = 0; i < node_count; ++i) {
    const auto& element = *nodes->get(i);
    std::string node_where = "nodes[" + std::to_string(index++) + "]";
    const toml::table* table = element.as_table();
    if (table == nullptr) return InvalidArgumentError(node_where + ": not a table");
    CN_RETURN_IF_ERROR(ParseNode(*table, node_where, config.inventory == "config",
                                 registration.add_nodes()));
  }
  return config;
}

StatusOr<v1::UpdateOffer> OfferChanges(const v1::RegisterProvider& before,
                                       const v1::RegisterProvider& after) {
  if (before.nodes_size() != after.nodes_size()) {
    return FailedPreconditionError(
        "site config: nodes were added or removed; restart the agent to "
        "register them");
  }
  v1::UpdateOffer update;
  for (int i = 0; i < before.nodes_size(); ++i) {
    v1::Node old_node = before.nodes(i);
    v1::Node new_node = after.nodes(i);
    if (old_node.name() != new_node.name()) {
      return FailedPreconditionError("site config: node " + old_node.name() +
                                     " was renamed or moved; restart the agent");
    }
    const v1::CapacityOffer offer = new_node.offer();
    old_node.set_offer(v1::CAPACITY_OFFER_DEDICATED);
    new_node.set_offer(v1::CAPACITY_OFFER_DEDICATED);
    if (old_node.SerializeAsString() != new_node.SerializeAsString()) {
      return FailedPreconditionError("site config: node " + old_node.name() +
                                     " changed more than its offer; restart "
                                     "the agent to register it");
    }
    if (offer != before.nodes(i).offer()) {
      auto* change = update.add_nodes();
      change->set_node(new_node.name());
      change->set_offer(offer);
    }
  }
  bool prices_changed = before.prices_size() != after.prices_size();
  for (int i = 0; !prices_changed && i < before.prices_size(); ++i) {
    prices_changed = before.prices(i).SerializeAsString() !=
                     after.prices(i).SerializeAsString();
  }
  if (prices_changed) *update.mutable_prices() = after.prices();
  return update;
}

StatusOr<SiteConfig> LoadSiteConfig(const std::string& path) {
  CN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 4 << 20));
  std::string base_dir =
      std::filesystem::absolute(path).parent_path().string();
  auto config = ParseSiteConfig(text, base_dir);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace computenet::provider
