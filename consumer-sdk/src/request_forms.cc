#include "computenet/consumer/request_forms.h"

#include <algorithm>
#include <cctype>

namespace computenet::consumer {

StatusOr<std::vector<std::string>> ParseAlternatives(
    const std::vector<std::string>& entries, const std::string& what) {
  std::vector<std::string> out;
  for (const auto& entry : entries) {
    size_t start = 0;
    while (true) {
      const size_t bar = entry.find('|', start);
      const std::string name = entry.substr(
          start, bar == std::string::npos ? std::string::npos : bar - start);
      if (name.empty()) {
        return InvalidArgumentError(what + ": empty name in '" + entry + "'");
      }
      if (std::find(out.begin(), out.end(), name) == out.end()) {
        out.push_back(name);
      }
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
  }
  return out;
}

StatusOr<uint32_t> ParseMilli(const std::string& text, const std::string& what,
                              uint32_t max_milli) {
  auto bad = [&]() {
    return InvalidArgumentError(what + ": want a positive number with at most "
                                "three decimals, got '" + text + "'");
  };
  if (text.empty()) return bad();
  uint64_t whole = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    if (whole > max_milli) return InvalidArgumentError(what + " is too large");
  }
  if (i == 0) return bad();
  uint64_t fraction = 0;
  size_t decimals = 0;
  if (i < text.size()) {
    if (text[i] != '.') return bad();
    for (++i; i < text.size(); ++i, ++decimals) {
      if (!std::isdigit(static_cast<unsigned char>(text[i])) || decimals == 3) {
        return bad();
      }
      fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    if (decimals == 0) return bad();
  }
  for (; decimals < 3; ++decimals) fraction *= 10;
  const uint64_t milli = whole * 1000 + fraction;
  if (milli == 0) return bad();
  if (milli > max_milli) return InvalidArgumentError(what + " is too large");
  return static_cast<uint32_t>(milli);
}

StatusOr<v1::PriorityClass> ParsePriorityClass(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower == "low") return v1::PRIORITY_CLASS_LOW;
  if (lower == "normal") return v1::PRIORITY_CLASS_NORMAL;
  if (lower == "high") return v1::PRIORITY_CLASS_HIGH;
  return InvalidArgumentError("priority must be low, normal or high, not '" +
                              text + "'");
}

}  // namespace computenet::consumer
