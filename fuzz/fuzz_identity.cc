// Fuzzes the identity files (common/identity.h): identity.pub alone as an
// operator enrols it (PublicIdentity::Parse), the PEM signing key alone
// (SigningKey::FromPem), and a whole key directory (Identity::Load) as
// every daemon and the CLI read it at start.
//
// Input: identity.pub, curve.key and signing.pem, separated by lines of
// "=====" ("\n=====\n"); missing parts are absent files.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = fuzz::Split(input, "\n=====\n");
  auto public_identity = PublicIdentity::Parse(parts[0]);
  if (public_identity.ok()) {
    // What the parser accepted writes out and parses back the same.
    auto again = PublicIdentity::Parse(public_identity->ToToml());
    if (!again.ok() || again->name != public_identity->name ||
        again->curve_public != public_identity->curve_public ||
        again->ed25519_public != public_identity->ed25519_public) {
      __builtin_trap();
    }
  }
  if (parts.size() > 2) (void)SigningKey::FromPem(parts[2]);
  const std::string dir = fuzz::ScratchDir() + "/identity";
  std::error_code ignored;
  for (const char* name : {"/identity.pub", "/curve.key", "/signing.pem"}) {
    std::filesystem::remove(dir + name, ignored);
  }
  std::filesystem::create_directory(dir, ignored);
  const char* names[] = {"/identity.pub", "/curve.key", "/signing.pem"};
  for (size_t i = 0; i < parts.size() && i < 3; ++i) {
    if (!fuzz::WriteScratchFile(dir + names[i], parts[i])) {
      __builtin_trap();
    }
  }
  auto identity = Identity::Load(dir);
  if (identity.ok()) {
    auto signature = identity->signing_key().Sign("fuzz");
    if (!signature.ok() || !identity->signing_key()
                                .verifying_key()
                                .Verify("fuzz", *signature)
                                .ok()) {
      __builtin_trap();
    }
  }
  return 0;
}
