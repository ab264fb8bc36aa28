// Ed25519 signing keys for usage records, checkpoints and statements.
//
// Sign and Verify run through libsodium (crypto_sign_detached /
// crypto_sign_verify_detached, about 2x OpenSSL 3.0 here); key generation
// and the key file format (PKCS#8 PEM) stay with OpenSSL 3 EVP, so key files
// are unchanged. Both are RFC 8032 Ed25519: the same key gives the same
// (deterministic) signature either way. libsodium is the stricter verifier:
// beyond what OpenSSL checks (S < L, a decodable key) it also refuses
// small-order public keys and R points and non-canonical key encodings,
// which no honestly generated key or signature has.
//
// Any OpenSSL signing or verification (tests, tools) must use a fresh
// EVP_MD_CTX each time: OpenSSL 3.0 silently keeps the first key when a used
// context is re-initialised for Ed25519 with another key, which would make
// B's claim verify with A's signature.
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
  explicit VerifyingKey(std::string raw) : raw_(std::move(raw)) {}
  std::string raw_;  // 32 bytes
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
  struct Secret;  // libsodium's 64-byte secret key, wiped when freed
  SigningKey(std::shared_ptr<EVP_PKEY> key,
             std::shared_ptr<const Secret> secret, VerifyingKey public_key)
      : key_(std::move(key)),
        secret_(std::move(secret)),
        public_key_(std::move(public_key)) {}
  // From an OpenSSL Ed25519 private key: derives libsodium's form of it.
  static StatusOr<SigningKey> FromEvp(std::shared_ptr<EVP_PKEY> key);
  std::shared_ptr<EVP_PKEY> key_;  // for ToPem
  std::shared_ptr<const Secret> secret_;
  VerifyingKey public_key_;
};

// Signs `domain` || '\0' || message, so a signature for one kind of object
// can never be replayed as another.
std::string DomainSeparated(std::string_view domain, std::string_view message);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_ED25519_H_
