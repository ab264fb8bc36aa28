#include "computenet/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>
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

// Appends text as a JSON string literal. SafeText has already replaced
// control characters and invalid UTF-8, so only the quote and the backslash
// need escaping; anything below 0x20 is escaped anyway, should one remain.
void AppendJsonString(std::string_view text, spdlog::memory_buf_t& out) {
  out.push_back('"');
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", byte);
      out.append(escape, escape + 6);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// %J: the safe message as a JSON string; %K: the logger's name as one.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    AppendJsonString(
        SafeText(std::string_view(message.payload.data(), message.payload.size()),
                 kMaxLogMessageBytes),
        out);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

class JsonComponentFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    AppendJsonString(
        SafeText(std::string_view(message.logger_name.data(),
                                  message.logger_name.size())),
        out);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonComponentFlag>();
  }
};

}  // namespace

const std::vector<std::string>& LogLevelNames() {
  static const std::vector<std::string> names = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  return names;
}

const std::vector<std::string>& LogFormatNames() {
  static const std::vector<std::string> names = {"text", "json"};
  return names;
}

void InitLogging(const std::string& component, const std::string& level,
                 const std::string& format) {
  if (format == "json") {
    auto logger = spdlog::stderr_logger_mt(component);
    auto formatter =
        std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('J')
        .add_flag<JsonComponentFlag>('K')
        .set_pattern(
            "{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\",\"level\":\"%l\","
            "\"component\":%K,\"message\":%J}");
    logger->set_formatter(std::move(formatter));
    logger->set_level(spdlog::level::from_str(level));
    spdlog::set_default_logger(logger);
    return;
  }
  auto logger = spdlog::stderr_color_mt(component);
  // UTC, ISO 8601 with the zone, so lines from brokers in different places
  // (and the ledger's UTC times) line up.
  auto formatter =
      std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<SafeMessageFlag>('*').set_pattern(
      "%Y-%m-%dT%H:%M:%S.%eZ %^%L%$ [%n] %*");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace computenet
