#include "computenet/common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace computenet {

const std::vector<std::string>& LogLevelNames() {
  static const std::vector<std::string> names = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  return names;
}

void InitLogging(const std::string& component, const std::string& level) {
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%n] %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace computenet
