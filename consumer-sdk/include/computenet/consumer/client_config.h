// ClientConfig: the consumer's connection settings file, read by the CLI
// and the Python SDK alike, so a user configures them once:
//
//   # $COMPUTENET_CONFIG, else $XDG_CONFIG_HOME/computenet/config.toml,
//   # else ~/.config/computenet/config.toml
//   broker = "tcp://broker.example:7700"
//   broker_identity = "broker.pub"   # relative to this file
//   identity = "keys/alice"          # your key directory, relative too
//   request_timeout = 5.0            # seconds per reply (optional)
//   retries = 2                      # attempts after a timeout (optional)
//
// Flags, then the COMPUTENET_* environment variables, override the file.
// Unknown keys are an error, so a typo never silently drops a setting.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_CONSUMER_CLIENT_CONFIG_H_
#define COMPUTENET_CONSUMER_CLIENT_CONFIG_H_

#include <optional>
#include <string>

#include "computenet/common/status.h"

namespace computenet::consumer {

struct ClientConfig {
  std::string broker;           // empty: not set in the file
  std::string broker_identity;  // absolute, or empty
  std::string identity;         // absolute, or empty
  std::optional<double> request_timeout_s;
  std::optional<int> retries;
};

// Where the file is looked for: $COMPUTENET_CONFIG if set, else
// $XDG_CONFIG_HOME/computenet/config.toml, else
// $HOME/.config/computenet/config.toml ("" if none of those is set).
std::string DefaultClientConfigPath();

// Parses the file's text; `file_name` names it in errors and its directory
// anchors relative paths. INVALID_ARGUMENT naming the key and line for an
// unknown key, a wrong type, a timeout outside 0.001..86400 s or retries
// outside 0..100.
StatusOr<ClientConfig> ParseClientConfig(const std::string& toml_text,
                                         const std::string& file_name);
// Reads and parses the file. NOT_FOUND if it does not exist.
StatusOr<ClientConfig> LoadClientConfig(const std::string& path);

}  // namespace computenet::consumer

#endif  // COMPUTENET_CONSUMER_CLIENT_CONFIG_H_
