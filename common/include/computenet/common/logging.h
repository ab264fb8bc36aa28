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

// Logs to stderr with `component` in every line. Every message is written
// through SafeText (common/safe_text.h): escaped and at most
// kMaxLogMessageBytes, whatever it quotes. level: one of
// LogLevelNames(); spdlog turns any other into "off", so check it first.
void InitLogging(const std::string& component, const std::string& level);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_LOGGING_H_
