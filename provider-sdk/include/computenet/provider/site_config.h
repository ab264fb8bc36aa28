// SiteConfig: a provider site's configuration file (TOML), as an operator
// writes it for `computenet-provider --config FILE`:
//
//   broker_endpoint = "tcp://broker.example:7700"
//   broker_identity = "keys/broker/identity.pub"  # or broker_public_key = "Z85"
//   identity_dir    = "keys/site-a"                # from `computenet keygen`
//   work_dir        = "/var/lib/computenet/site-a" # job output
//   usage_interval_s = 300   # interim usage records (0 = only the last)
//   site            = "zhangbei-1"
//   region          = "north"
//   currency        = "CNY"
//   [prices]                                       # minor units / card-hour
//   A800 = 1500
//   [[nodes]]
//   name = "node-1"
//   fabric = "ib-1"          # NVLink/IB domain; gang jobs stay inside one
//   cpu_cores = 64
//   memory_mib = 524288
//   accelerators = [ { model = "A800", memory_mib = 81920, count = 8 } ]
//
// Relative paths are relative to the file's directory. Unknown keys are an
// error, so a typo never silently drops a setting.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_PROVIDER_SITE_CONFIG_H_
#define COMPUTENET_PROVIDER_SITE_CONFIG_H_

#include <string>

#include "computenet/common/status.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

struct SiteConfig {
  std::string broker_endpoint;
  std::string broker_public_key;  // Z85, read from broker_identity if given
  std::string identity_dir;
  std::string work_dir;
  uint32_t usage_interval_s = 300;  // ProviderOptions::usage_interval_s
  v1::RegisterProvider registration;  // site, region, currency, nodes, prices
};

// INVALID_ARGUMENT naming the key at fault; NOT_FOUND if a referenced file
// is missing.
StatusOr<SiteConfig> ParseSiteConfig(const std::string& toml_text,
                                     const std::string& base_dir);
StatusOr<SiteConfig> LoadSiteConfig(const std::string& path);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_SITE_CONFIG_H_
