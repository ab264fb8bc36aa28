#include "computenet/common/rate_limiter.h"

#include <algorithm>

namespace computenet {

bool RateLimiter::Allow(const std::string& key, int64_t now_ms) {
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now_ms});
  Bucket& bucket = it->second;
  if (!inserted && now_ms > bucket.updated_ms) {
    bucket.tokens = std::min(
        burst_, bucket.tokens +
                    static_cast<double>(now_ms - bucket.updated_ms) * rate_per_ms_);
    bucket.updated_ms = now_ms;
  }
  // Tolerate rounding: ten additions of 0.1 must make a whole token.
  if (bucket.tokens < 1.0 - 1e-9) return false;
  bucket.tokens = std::max(0.0, bucket.tokens - 1.0);
  return true;
}

}  // namespace computenet
