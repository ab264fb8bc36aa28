// Safe text: untrusted strings (job ids, env keys, a provider's status
// message, a peer's reason) made fit for a log line, an error reply or a
// terminal. Control characters and invalid UTF-8 are escaped, so no input
// can forge a log line or drive a terminal, and the result is bounded, so
// echoing input cannot amplify it (a 1 MiB job id once grew the log by
// 1 MiB per request).
//
// Thread safety: pure functions; safe from any thread.
#ifndef COMPUTENET_COMMON_SAFE_TEXT_H_
#define COMPUTENET_COMMON_SAFE_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace computenet {

// How much of one log message is written (the logger applies it to every
// message, after formatting).
inline constexpr size_t kMaxLogMessageBytes = 4096;
// How much of a status message travels in a reply (StatusToProto).
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `text` with backslash, \n, \r, \t and every other control character
// (C0, DEL, C1) or byte that is not part of valid UTF-8 escaped (\\, \n,
// \r, \t, \xNN), cut at a character boundary so that the result is at most
// `max_bytes` plus a marker "...[+N bytes]" naming how many input bytes
// were left out. Printable ASCII and valid multi-byte UTF-8 pass unchanged.
std::string SafeText(std::string_view text, size_t max_bytes = 256);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_SAFE_TEXT_H_
