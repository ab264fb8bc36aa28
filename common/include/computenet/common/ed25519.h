// Ed25519 signing keys (OpenSSL 3 EVP) for usage records, checkpoints and
// statements.
//
// Every Sign/Verify uses a fresh EVP_MD_CTX: OpenSSL 3.0 silently keeps the
// first key when a used context is re-initialised for Ed25519 with another
// key, which would make B's claim verify with A's signature.
//
// Thread safety: SigningKey and VerifyingKey are immutable after creation and
// may be used from several threads at once.
#ifndef COMPUTENET_COMMON_ED25519_H_
#define COMPUTENET_COMMON_ED25519_H_

#include <memory>
#include <string>
#include <string_view>

#include "computenet/common/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace computenet {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

class VerifyingKey {
 public:
  // From the 32 raw public-key bytes; INVALID_ARGUMENT if malformed.
  static StatusOr<VerifyingKey> FromRaw(std::string_view raw);
  // From 64 hex characters; INVALID_ARGUMENT if malformed.
  static StatusOr<VerifyingKey> FromHex(std::string_view hex);

  // OK if signature is this key's signature over message; UNAUTHENTICATED
  // if it is not (including wrong length); INTERNAL on library failure.
  Status Verify(std::string_view message, std::string_view signature) const;

  const std::string& raw() const { return raw_; }
  std::string hex() const;

 private:
  VerifyingKey(std::shared_ptr<EVP_PKEY> key, std::string raw)
      : key_(std::move(key)), raw_(std::move(raw)) {}
  std::shared_ptr<EVP_PKEY> key_;
  std::string raw_;
};

class SigningKey {
 public:
  static StatusOr<SigningKey> Generate();
  // From a PKCS#8 PEM private key (as written by ToPem).
  static StatusOr<SigningKey> FromPem(std::string_view pem);
  // Reads a 0600 PEM file (FAILED_PRECONDITION if its mode is looser).
  static StatusOr<SigningKey> LoadFile(const std::string& path);

  StatusOr<std::string> ToPem() const;
  // Returns the 64-byte signature, or INTERNAL.
  StatusOr<std::string> Sign(std::string_view message) const;
  const VerifyingKey& verifying_key() const { return public_key_; }

 private:
  SigningKey(std::shared_ptr<EVP_PKEY> key, VerifyingKey public_key)
      : key_(std::move(key)), public_key_(std::move(public_key)) {}
  std::shared_ptr<EVP_PKEY> key_;
  VerifyingKey public_key_;
};

// Signs `domain` || '\0' || message, so a signature for one kind of object
// can never be replayed as another.
std::string DomainSeparated(std::string_view domain, std::string_view message);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_ED25519_H_
