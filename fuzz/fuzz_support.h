// What the libFuzzer harnesses in fuzz/ share: fixed keys (so that seeds
// signed by fuzz/make_corpus verify, and a harness can sign what the fuzzer
// made and so reach the checks behind a signature), a private scratch
// directory, and splitting one input into several files.
//
// A harness plays the party that sends the bytes: an enrolled provider holds
// its own signing key, so signing a fuzzed usage record is what a hostile
// provider can do; an operator or a forger with write access can put any
// bytes in a config, key or ledger file. Harnesses never check the input
// they are given (a refusal is a correct answer); they trap only when the
// library breaks its own contract on what it accepted.
//
// Thread safety: libFuzzer calls a harness from one thread; so do these.
#ifndef COMPUTENET_FUZZ_FUZZ_SUPPORT_H_
#define COMPUTENET_FUZZ_FUZZ_SUPPORT_H_

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/common/ed25519.h"
#include "computenet/common/files.h"
#include "computenet/common/identity.h"

namespace computenet::fuzz {

// Ed25519 keys made once for the fuzzers (no secret: they sign nothing
// outside fuzz/). kBrokerPem is the broker "hub" and signs checkpoints;
// kProviderPem is the provider "site-a" and signs usage records (and, as
// the peer "hub-east", remote usage and settlements).
inline constexpr char kBrokerPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIKu9B3XQUd15VLCdxx8qBzFCTSmpNlSjweAUQjIP0UVT\n"
    "-----END PRIVATE KEY-----\n";
inline constexpr char kProviderPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEILJYAMEfGh2xcdw+Bf4pKIgFoDuvWawSdcrS/1tBVcVw\n"
    "-----END PRIVATE KEY-----\n";
// A CURVE key pair for identity files (public, secret; Z85).
inline constexpr char kCurvePublic[] =
    "4xDAcI.K&o!gjE>9Z#@4dwW@n0SL.t8aH34NlZE&";
inline constexpr char kCurveSecret[] =
    "h15}oFDLVuVNk@q[e%SFOE<I-zZ!-jJ*EX8vD1N=";

inline const SigningKey& BrokerKey() {
  static const SigningKey* key =
      new SigningKey(*SigningKey::FromPem(kBrokerPem));
  return *key;
}
inline const SigningKey& ProviderKey() {
  static const SigningKey* key =
      new SigningKey(*SigningKey::FromPem(kProviderPem));
  return *key;
}

// The identity.pub text of a party holding kCurvePublic and `key`.
inline std::string PublicIdentityToml(const std::string& name,
                                      const SigningKey& key) {
  return PublicIdentity{name, kCurvePublic, key.verifying_key().hex()}.ToToml();
}

// A directory of this process's own, made on first use under $TMPDIR and
// left for the system's cleaning (a fuzzer stops by signal, as often as
// not). Holds the files a config may name (identity files of peers and of
// the broker) and the files a harness writes per input.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
        "/computenet-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    auto* made = new std::string(pattern);
    // Files that configs in the corpus name: the broker's and peers' keys.
    for (const char* name : {"hub", "hub-east", "hub-west"}) {
      const std::string keys = *made + "/keys/" + name;
      ::mkdir((*made + "/keys").c_str(), 0700);
      ::mkdir(keys.c_str(), 0700);
      const SigningKey& key =
          std::string_view(name) == "hub" ? BrokerKey() : ProviderKey();
      if (!WriteFileAtomically(keys + "/identity.pub",
                               PublicIdentityToml(name, key), 0644)
               .ok()) {
        std::abort();
      }
    }
    if (!WriteFileAtomically(*made + "/broker.pub",
                             PublicIdentityToml("hub", BrokerKey()), 0644)
             .ok()) {
      std::abort();
    }
    return made;
  }();
  return *dir;
}

// Configs name files to read. A name under /dev, /proc or /sys could make
// a harness read a terminal or a pipe and wait forever, which says nothing
// about the parser: such inputs are skipped (an operator's own config is
// trusted to name real files).
inline bool NamesSpecialFiles(std::string_view text) {
  for (std::string_view bad : {"dev/", "proc/", "sys/", "dev\\", "fd/"}) {
    if (text.find(bad) != std::string_view::npos) return true;
  }
  return false;
}

// Splits `data` at each `separator`; always at least one part.
inline std::vector<std::string> Split(std::string_view data,
                                      std::string_view separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t at = data.find(separator, start);
    if (at == std::string_view::npos) {
      parts.emplace_back(data.substr(start));
      return parts;
    }
    parts.emplace_back(data.substr(start, at - start));
    start = at + separator.size();
  }
}

// Writes a scratch file the fast way (no fsync: WriteFileAtomically's
// costs more than the parse it feeds) with `mode`; false on failure.
inline bool WriteScratchFile(const std::string& path, std::string_view bytes,
                             mode_t mode = 0600) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  const bool written =
      std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  return std::fclose(file) == 0 && written && ::chmod(path.c_str(), mode) == 0;
}

// Libraries log refusals, and protobuf logs every string field that is not
// UTF-8; a fuzzer makes millions of such inputs.
inline void QuietLogs() {
  spdlog::set_level(spdlog::level::off);
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
}

}  // namespace computenet::fuzz

#endif  // COMPUTENET_FUZZ_FUZZ_SUPPORT_H_
