// Logging setup shared by the daemons and CLIs (spdlog underneath).
//
// Thread safety: InitLogging must be called once, before other threads start;
// spdlog's default logger is thread-safe after that.
#ifndef COMPUTENET_COMMON_LOGGING_H_
#define COMPUTENET_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

namespace computenet {

// The levels InitLogging knows (spdlog's names), for --log-level checks.
const std::vector<std::string>& LogLevelNames();
// The line formats InitLogging knows, for --log-format checks: "text"
// (the default) and "json".
const std::vector<std::string>& LogFormatNames();

// Logs to stderr with `component` in every line, times in UTC (ISO 8601,
// milliseconds, "Z"). Every message is written through SafeText
// (common/safe_text.h): escaped and at most kMaxLogMessageBytes, whatever it
// quotes. level: one of LogLevelNames(); spdlog turns any other into "off",
// so check it first. format: one of LogFormatNames(); anything else is text.
//   text: 2026-12-03T14:05:25.123Z I [hub] message
//   json: one object per line, for log collectors:
//         {"time":"2026-12-03T14:05:25.123Z","level":"info",
//          "component":"hub","message":"message"}
//         (the message is the text format's, JSON-escaped on top).
void InitLogging(const std::string& component, const std::string& level,
                 const std::string& format = "text");

}  // namespace computenet

#endif  // COMPUTENET_COMMON_LOGGING_H_
