#include "computenet/consumer/client_config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>

#include "computenet/common/config_file.h"
#include "computenet/common/files.h"
#include "computenet/common/safe_text.h"

namespace computenet::consumer {
namespace {

Status KeyError(const std::string& file, const std::string& key,
                const toml::node& node, const std::string& what) {
  const auto line = node.source().begin.line;
  return InvalidArgumentError(
      file + ": '" + key + "'" +
      (line > 0 ? " at line " + std::to_string(line) : std::string()) + " " +
      what);
}

}  // namespace

std::string DefaultClientConfigPath() {
  if (const char* explicit_path = std::getenv("COMPUTENET_CONFIG")) {
    return explicit_path;
  }
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/computenet/config.toml";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.config/computenet/config.toml";
  }
  return "";
}

StatusOr<ClientConfig> ParseClientConfig(const std::string& toml_text,
                                         const std::string& file_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, file_name);
  } catch (const toml::parse_error& error) {
    return InvalidArgumentError(
        file_name + ":" + std::to_string(error.source().begin.line) + ": " +
        SafeText(std::string(error.description()), 200));
  }
  CN_RETURN_IF_ERROR(CheckKeys(root,
                               {"broker", "broker_identity", "identity",
                                "request_timeout", "retries"},
                               file_name));
  const std::filesystem::path base =
      std::filesystem::absolute(file_name).parent_path();
  ClientConfig config;
  for (auto [key, out] : {std::pair{"broker", &config.broker},
                          std::pair{"broker_identity", &config.broker_identity},
                          std::pair{"identity", &config.identity}}) {
    const toml::node* node = root.get(key);
    if (node == nullptr) continue;
    auto text = node->value_exact<std::string>();
    if (!text || text->empty() || text->find('\0') != std::string::npos) {
      return KeyError(file_name, key, *node, "must be a non-empty string");
    }
    *out = *text;
    if (std::string(key) != "broker" && std::filesystem::path(*out).is_relative()) {
      *out = (base / *out).lexically_normal().string();
    }
  }
  if (const toml::node* node = root.get("request_timeout")) {
    std::optional<double> seconds = node->value<double>();  // 5 or 5.0
    if (!seconds || !(*seconds >= 0.001 && *seconds <= 86400.0)) {
      return KeyError(file_name, "request_timeout", *node,
                      "must be seconds, 0.001..86400");
    }
    config.request_timeout_s = *seconds;
  }
  if (const toml::node* node = root.get("retries")) {
    auto retries = node->value_exact<int64_t>();
    if (!retries || *retries < 0 || *retries > 100) {
      return KeyError(file_name, "retries", *node, "must be an integer, 0..100");
    }
    config.retries = static_cast<int>(*retries);
  }
  return config;
}

StatusOr<ClientConfig> LoadClientConfig(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return NotFoundError("no config file " + path);
  }
  CN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 1 << 20));
  return ParseClientConfig(text, path);
}

}  // namespace computenet::consumer
