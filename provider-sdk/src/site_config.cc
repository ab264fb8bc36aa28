#include "computenet/provider/site_config.h"

#include <filesystem>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "computenet/common/files.h"
#include "computenet/common/identity.h"

namespace computenet::provider {
namespace {

Status CheckKeys(const toml::table& table, const std::set<std::string>& allowed,
                 const std::string& where) {
  for (const auto& [key, value] : table) {
    if (allowed.count(std::string(key.str())) == 0) {
      return InvalidArgumentError(where + ": unknown key '" +
                                  std::string(key.str()) + "'");
    }
  }
  return OkStatus();
}

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

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

Status ParseNode(const toml::table& table, const std::string& where,
                 v1::Node* node) {
  CN_RETURN_IF_ERROR(CheckKeys(
      table, {"name", "fabric", "cpu_cores", "memory_mib", "accelerators"},
      where));
  CN_ASSIGN_OR_RETURN(*node->mutable_name(),
                      GetString(table, "name", where, true));
  CN_ASSIGN_OR_RETURN(*node->mutable_fabric_id(),
                      GetString(table, "fabric", where, false));
  CN_ASSIGN_OR_RETURN(int64_t cores, GetInt(table, "cpu_cores", where, false, 0, 1 << 20));
  CN_ASSIGN_OR_RETURN(int64_t memory,
                      GetInt(table, "memory_mib", where, false, 0, int64_t{1} << 40));
  node->set_cpu_cores(static_cast<uint32_t>(cores));
  node->set_memory_mib(static_cast<uint64_t>(memory));
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
    CN_RETURN_IF_ERROR(
        CheckKeys(*item, {"model", "memory_mib", "count"}, item_where));
    auto* accelerator = node->add_accelerators();
    CN_ASSIGN_OR_RETURN(*accelerator->mutable_model(),
                        GetString(*item, "model", item_where, true));
    CN_ASSIGN_OR_RETURN(int64_t card_memory,
                        GetInt(*item, "memory_mib", item_where, false, 0, int64_t{1} << 30));
    CN_ASSIGN_OR_RETURN(int64_t count, GetInt(*item, "count", item_where, true, 1, 64));
    accelerator->set_memory_mib(static_cast<uint64_t>(card_memory));
    accelerator->set_count(static_cast<uint32_t>(count));
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
       "usage_interval_s",
       "nodes"},
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
        PublicIdentity::LoadFile(Resolve(base_dir, broker_identity)));
    config.broker_public_key = broker.curve_public;
  }
  if (config.broker_public_key.empty()) {
    return InvalidArgumentError(
        where + ": set broker_identity or broker_public_key");
  }
  CN_RETURN_IF_ERROR(ValidateCurveKey(config.broker_public_key));
  CN_ASSIGN_OR_RETURN(std::string identity_dir,
                      GetString(root, "identity_dir", where, true));
  config.identity_dir = Resolve(base_dir, identity_dir);
  CN_ASSIGN_OR_RETURN(std::string work_dir,
                      GetString(root, "work_dir", where, true));
  config.work_dir = Resolve(base_dir, work_dir);
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
  const toml::array* nodes = root["nodes"].as_array();
  if (nodes == nullptr || nodes->empty()) {
    return InvalidArgumentError(where + ": at least one [[nodes]] is required");
  }
  int index = 0;
  for (const auto& element : *nodes) {
    std::string node_where = "nodes[" + std::to_string(index++) + "]";
    const toml::table* table = element.as_table();
    if (table == nullptr) return InvalidArgumentError(node_where + ": not a table");
    CN_RETURN_IF_ERROR(ParseNode(*table, node_where,
                                 registration.add_nodes()));
  }
  return config;
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
