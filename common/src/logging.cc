#include "computenet/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>
#include <string_view>

#include "computenet/common/safe_text.h"

namespace computenet {
namespace {

// %* in the pattern: the message made safe (SafeText), so that no input a
// message quotes can forge a line (a newline in a provider's status message
// once could) or make one huge.
class SafeMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    const std::string safe =
        SafeText(std::string_view(message.payload.data(), message.payload.size()),
                 kMaxLogMessageBytes);
    out.append(safe.data(), safe.data() + safe.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SafeMessageFlag>();
  }
};

}  // namespace

const std::vector<std::string>& LogLevelNames() {
  static const std::vector<std::string> names = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  return names;
}

void InitLogging(const std::string& component, const std::string& level) {
  auto logger = spdlog::stderr_color_mt(component);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<SafeMessageFlag>('*').set_pattern(
      "%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%n] %*");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace computenet
