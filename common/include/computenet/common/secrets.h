// Secret job environment (JobSpec.secret_env, issue 11): the rules every
// party applies to it, the mask that stands for a value in every stored or
// reported copy of a spec, and SecretBox, the authenticated encryption
// (AES-256-GCM, OpenSSL EVP) a broker keeps the values under at rest.
//
// Thread safety: the functions are stateless; a SecretBox is immutable after
// Load and safe to share between threads.
#ifndef COMPUTENET_COMMON_SECRETS_H_
#define COMPUTENET_COMMON_SECRETS_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet {

// What a secret's value reads as wherever the spec is stored or shown.
inline constexpr char kSecretMask[] = "***";
inline constexpr size_t kMaxSecretEnvEntries = 64;
inline constexpr size_t kMaxSecretValueBytes = 16 * 1024;

// Whether name is a portable environment variable name ([A-Za-z_][A-Za-z0-9_]*,
// at most 256 bytes).
bool IsEnvVariableName(const std::string& name);

// INVALID_ARGUMENT naming (never quoting the value of) the first bad entry:
// too many, a bad name, a name also in env, an empty or over-long value, a
// value with a NUL byte.
Status ValidateSecretEnv(const v1::JobSpec& spec);

// Replaces every secret value in spec by kSecretMask; the names stay.
void MaskSecretEnv(v1::JobSpec* spec);
// Whether any secret value in spec is not the mask.
bool HasSecretValues(const v1::JobSpec& spec);

// AES-256-GCM under one 32-byte key. A sealed value is nonce (12 random
// bytes) || ciphertext || tag (16 bytes); `context` (for the broker: the job
// id) is authenticated with it, so a value cannot be moved to another job.
class SecretBox {
 public:
  // Reads the key file at path (64 hex digits; FAILED_PRECONDITION if
  // group or others may read it), creating it with a new random key, mode
  // 0600, when it does not exist. INTERNAL on I/O errors; DATA_LOSS if the
  // file does not hold a key.
  static StatusOr<std::shared_ptr<const SecretBox>> LoadOrCreate(
      const std::string& path);
  // A box under a given 32-byte key (tests). INVALID_ARGUMENT otherwise.
  static StatusOr<std::shared_ptr<const SecretBox>> FromKey(
      const std::string& key);
  ~SecretBox();
  SecretBox(const SecretBox&) = delete;
  SecretBox& operator=(const SecretBox&) = delete;

  StatusOr<std::string> Seal(const std::string& plaintext,
                             const std::string& context) const;
  // DATA_LOSS if the value was not sealed by this key with this context
  // (or was changed since).
  StatusOr<std::string> Open(const std::string& sealed,
                             const std::string& context) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;  // wiped when freed
};

}  // namespace computenet

#endif  // COMPUTENET_COMMON_SECRETS_H_
