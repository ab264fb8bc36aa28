// Helpers for the TOML files operators write (the broker's config, a
// provider site's config): a key the reader does not know is an error, not
// silently ignored, and a relative path means relative to the file.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_CONFIG_FILE_H_
#define COMPUTENET_COMMON_CONFIG_FILE_H_

#include <set>
#include <string>
#include <toml++/toml.h>

#include "computenet/common/status.h"

namespace computenet {

// INVALID_ARGUMENT "<where>: unknown key 'k' at line N" for the first key
// of table not in allowed; OK otherwise.
Status CheckKeys(const toml::table& table, const std::set<std::string>& allowed,
                 const std::string& where);

// path if it is empty or absolute, else base_dir/path, normalized.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_CONFIG_FILE_H_
