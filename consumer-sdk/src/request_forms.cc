#include "computenet/consumer/request_forms.h"

#include <algorithm>
#include <cctype>

#include "computenet/common/files.h"
#include "computenet/common/safe_text.h"
#include "computenet/common/secrets.h"

namespace computenet::consumer {
namespace {

Status PutSecret(const std::string& name, std::string value,
                 const std::string& what, v1::JobSpec* spec) {
  if (!IsEnvVariableName(name)) {
    return InvalidArgumentError(what + ": '" + SafeText(name, 64) +
                                "' is not a variable name");
  }
  if (spec->secret_env().count(name) != 0 || spec->env().count(name) != 0) {
    return InvalidArgumentError(what + ": " + name + " is set twice");
  }
  (*spec->mutable_secret_env())[name] = std::move(value);
  return OkStatus();
}

}  // namespace

Status AddSecretEnv(const std::string& entry, v1::JobSpec* spec) {
  const size_t eq = entry.find('=');
  if (eq == std::string::npos || eq == 0) {
    // Only what precedes a '=' could be a name; the rest may be the secret.
    return InvalidArgumentError("--secret-env wants NAME=VALUE");
  }
  return PutSecret(entry.substr(0, eq), entry.substr(eq + 1), "--secret-env",
                   spec);
}

StatusOr<std::string> ReadSecretValueFile(const std::string& path) {
  auto value = ReadSecretFile(path);
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError(
          "secret file " + path +
          " may be read by group or others: chmod 600 it");
    }
    return value.status();
  }
  if (!value->empty() && value->back() == '\n') value->pop_back();
  if (value->empty() || value->size() > kMaxSecretValueBytes ||
      value->find('\0') != std::string::npos) {
    return InvalidArgumentError("secret file " + path +
                                " must hold 1 byte .. 16 KiB without NUL");
  }
  return value;
}

Status AddSecretEnvFile(const std::string& entry, v1::JobSpec* spec) {
  const size_t eq = entry.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
    return InvalidArgumentError("--secret-env-file wants NAME=PATH, got '" +
                                SafeText(entry, 128) + "'");
  }
  CN_ASSIGN_OR_RETURN(std::string value,
                      ReadSecretValueFile(entry.substr(eq + 1)));
  return PutSecret(entry.substr(0, eq), std::move(value), "--secret-env-file",
                   spec);
}

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
