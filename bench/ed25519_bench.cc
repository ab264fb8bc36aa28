// Ed25519 sign and verify rates on one core through computenet's common
// interface (SigningKey::Sign, VerifyingKey::Verify), over a ~200 B message
// (the size of a usage record). Compare with `openssl speed ed25519`.
//
// Usage: ed25519_bench [seconds_per_figure=2]. Exits 1 if a signature does
// not verify or nothing was measured.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "computenet/common/ed25519.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
double RatePerSecond(double seconds, Fn&& fn) {
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  long count = 0;
  while (Clock::now() < until) {
    for (int i = 0; i < 64; ++i) fn(count + i);
    count += 64;
  }
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(count) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  auto key = computenet::SigningKey::Generate();
  if (!key.ok()) {
    std::fprintf(stderr, "keygen: %s\n", key.status().ToString().c_str());
    return 1;
  }
  std::string message(200, 'u');
  auto signature = key->Sign(message);
  if (!signature.ok() ||
      !key->verifying_key().Verify(message, *signature).ok()) {
    std::fprintf(stderr, "signature does not verify\n");
    return 1;
  }
  bool failed = false;
  const double sign_rate = RatePerSecond(seconds, [&](long i) {
    message[0] = static_cast<char>(i);
    if (!key->Sign(message).ok()) failed = true;
  });
  message[0] = 'u';
  const double verify_rate = RatePerSecond(seconds, [&](long) {
    if (!key->verifying_key().Verify(message, *signature).ok()) failed = true;
  });
  std::printf("Ed25519 via computenet::SigningKey/VerifyingKey, 200 B, 1 core\n");
  std::printf("sign   %10.0f /s  (%.1f us)\n", sign_rate, 1e6 / sign_rate);
  std::printf("verify %10.0f /s  (%.1f us)\n", verify_rate, 1e6 / verify_rate);
  return failed || sign_rate <= 0 || verify_rate <= 0 ? 1 : 0;
}
