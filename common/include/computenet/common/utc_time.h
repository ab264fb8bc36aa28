// Times for people: milliseconds since the epoch as ISO 8601 UTC
// ("2026-12-03T06:20:11Z"), the one format the CLI, statements and the
// broker's reasons print.
//
// Thread safety: stateless; safe from any thread.
#ifndef COMPUTENET_COMMON_UTC_TIME_H_
#define COMPUTENET_COMMON_UTC_TIME_H_

#include <cstdint>
#include <string>

namespace computenet {

// Whole seconds (truncated); "-" for ms <= 0.
std::string FormatUtc(int64_t ms);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_UTC_TIME_H_
