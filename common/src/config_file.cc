#include "computenet/common/config_file.h"

#include <filesystem>

namespace computenet {

Status CheckKeys(const toml::table& table, const std::set<std::string>& allowed,
                 const std::string& where) {
  for (const auto& [key, value] : table) {
    if (allowed.count(std::string(key.str())) == 0) {
      // The line, so an operator finds it in a long file.
      const auto line = key.source().begin.line;
      return InvalidArgumentError(
          where + ": unknown key '" + std::string(key.str()) + "'" +
          (line > 0 ? " at line " + std::to_string(line) : std::string()));
    }
  }
  return OkStatus();
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

}  // namespace computenet
