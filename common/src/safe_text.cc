#include "computenet/common/safe_text.h"

#include <algorithm>
#include <cstdint>

namespace computenet {
namespace {

// Length of the valid UTF-8 sequence starting at text[at], or 0 if there is
// none (bad lead byte, missing or bad continuation, overlong, surrogate, past
// U+10FFFF, or a C1 control U+0080..U+009F).
size_t Utf8SequenceLength(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) {
    return static_cast<uint8_t>(text[at + i]);
  };
  const uint8_t lead = byte(0);
  size_t length = 0;
  uint32_t code_point = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code_point = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3F);
  }
  if ((length == 3 && code_point < 0x800) ||
      (length == 4 && (code_point < 0x10000 || code_point > 0x10FFFF)) ||
      (code_point >= 0xD800 && code_point <= 0xDFFF) ||
      (code_point >= 0x80 && code_point <= 0x9F)) {
    return 0;
  }
  return length;
}

}  // namespace

std::string SafeText(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 16);
  size_t at = 0;
  while (at < text.size()) {
    const auto byte = static_cast<uint8_t>(text[at]);
    // What this input character becomes: itself, or its escape (at most 4
    // bytes either way); no allocation per character on the log path.
    char escape[4] = {'\\', 0, 0, 0};
    std::string_view piece(escape, 2);
    size_t consumed = 1;
    if (byte >= 0x20 && byte < 0x7F && byte != '\\') {
      piece = text.substr(at, 1);
    } else if (byte == '\\') {
      escape[1] = '\\';
    } else if (byte == '\n') {
      escape[1] = 'n';
    } else if (byte == '\r') {
      escape[1] = 'r';
    } else if (byte == '\t') {
      escape[1] = 't';
    } else if (size_t length = byte >= 0x80 ? Utf8SequenceLength(text, at) : 0;
               length > 0) {
      piece = text.substr(at, length);
      consumed = length;
    } else {
      escape[1] = 'x';
      escape[2] = kHex[byte >> 4];
      escape[3] = kHex[byte & 0xF];
      piece = std::string_view(escape, 4);
    }
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    at += consumed;
  }
  if (at < text.size()) {
    out += "...[+" + std::to_string(text.size() - at) + " bytes]";
  }
  return out;
}

}  // namespace computenet
