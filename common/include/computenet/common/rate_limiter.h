// RateLimiter: a token bucket per key (e.g. per authenticated identity), so
// one noisy or hostile peer cannot starve the broker's single core loop.
//
// Thread safety: not thread-safe; owned by one loop.
#ifndef COMPUTENET_COMMON_RATE_LIMITER_H_
#define COMPUTENET_COMMON_RATE_LIMITER_H_

#include <cstdint>
#include <string>
#include <unordered_map>

namespace computenet {

class RateLimiter {
 public:
  // rate_per_second tokens are added per second, up to burst.
  RateLimiter(double rate_per_second, double burst)
      : rate_per_ms_(rate_per_second / 1000.0), burst_(burst) {}

  // Takes one token for key at now_ms; false if its bucket is empty.
  bool Allow(const std::string& key, int64_t now_ms);

 private:
  struct Bucket {
    double tokens;
    int64_t updated_ms;
  };
  double rate_per_ms_;
  double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace computenet

#endif  // COMPUTENET_COMMON_RATE_LIMITER_H_
