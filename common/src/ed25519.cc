#include "computenet/common/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "computenet/common/files.h"
#include "computenet/common/sha256.h"

namespace computenet {
namespace {

constexpr size_t kPublicKeyBytes = 32;
constexpr size_t kSignatureBytes = 64;

std::string OpenSslError(std::string_view what) {
  std::string out(what);
  unsigned long code = ERR_get_error();
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    out += ": ";
    out += buffer;
  }
  ERR_clear_error();
  return out;
}

static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeyBytes);
static_assert(crypto_sign_BYTES == kSignatureBytes);
static_assert(crypto_sign_SEEDBYTES == 32);

// sodium_init once per process (libzmq may have done it already; repeats
// are harmless and it is safe to race).
Status EnsureSodium() {
  static const bool ready = sodium_init() >= 0;
  return ready ? OkStatus() : InternalError("sodium_init failed");
}

// Bytes for libsodium; never null, even for an empty view.
const unsigned char* Bytes(std::string_view text) {
  static const unsigned char kEmpty = 0;
  return text.data() == nullptr
             ? &kEmpty
             : reinterpret_cast<const unsigned char*>(text.data());
}

std::shared_ptr<EVP_PKEY> Share(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, EvpPkeyDeleter());
}

StatusOr<std::string> RawPublic(EVP_PKEY* key) {
  std::string raw(kPublicKeyBytes, '\0');
  size_t length = raw.size();
  if (EVP_PKEY_get_raw_public_key(
          key, reinterpret_cast<unsigned char*>(raw.data()), &length) != 1 ||
      length != kPublicKeyBytes) {
    return InternalError(OpenSslError("EVP_PKEY_get_raw_public_key"));
  }
  return raw;
}

}  // namespace

void EvpPkeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

struct SigningKey::Secret {
  unsigned char bytes[crypto_sign_SECRETKEYBYTES];  // seed || public key
  Secret() = default;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret() { sodium_memzero(bytes, sizeof(bytes)); }
};

StatusOr<VerifyingKey> VerifyingKey::FromRaw(std::string_view raw) {
  if (raw.size() != kPublicKeyBytes) {
    return InvalidArgumentError("Ed25519 public key must be 32 bytes, got " +
                                std::to_string(raw.size()));
  }
  // Any 32 bytes, as before: a key that is not a valid point (or has small
  // order) verifies nothing.
  return VerifyingKey(std::string(raw));
}

StatusOr<VerifyingKey> VerifyingKey::FromHex(std::string_view hex) {
  std::string raw;
  if (!HexDecode(hex, &raw)) {
    return InvalidArgumentError("Ed25519 public key is not hex");
  }
  return FromRaw(raw);
}

std::string VerifyingKey::hex() const { return HexEncode(raw_); }

Status VerifyingKey::Verify(std::string_view message,
                            std::string_view signature) const {
  if (signature.size() != kSignatureBytes) {
    return UnauthenticatedError("signature must be 64 bytes, got " +
                                std::to_string(signature.size()));
  }
  CN_RETURN_IF_ERROR(EnsureSodium());
  if (crypto_sign_verify_detached(Bytes(signature), Bytes(message),
                                  message.size(), Bytes(raw_)) != 0) {
    return UnauthenticatedError("signature does not verify");
  }
  return OkStatus();
}

StatusOr<SigningKey> SigningKey::FromEvp(std::shared_ptr<EVP_PKEY> key) {
  CN_RETURN_IF_ERROR(EnsureSodium());
  CN_ASSIGN_OR_RETURN(std::string raw, RawPublic(key.get()));
  unsigned char seed[crypto_sign_SEEDBYTES];
  size_t length = sizeof(seed);
  if (EVP_PKEY_get_raw_private_key(key.get(), seed, &length) != 1 ||
      length != sizeof(seed)) {
    sodium_memzero(seed, sizeof(seed));
    return InternalError(OpenSslError("EVP_PKEY_get_raw_private_key"));
  }
  auto secret = std::make_shared<Secret>();
  unsigned char derived_public[crypto_sign_PUBLICKEYBYTES];
  const int derived =
      crypto_sign_seed_keypair(derived_public, secret->bytes, seed);
  sodium_memzero(seed, sizeof(seed));
  // The same RFC 8032 key both ways, or something is badly wrong.
  if (derived != 0 ||
      std::string_view(reinterpret_cast<const char*>(derived_public),
                       sizeof(derived_public)) != raw) {
    return InternalError("libsodium and OpenSSL disagree on the public key");
  }
  CN_ASSIGN_OR_RETURN(VerifyingKey public_key, VerifyingKey::FromRaw(raw));
  return SigningKey(std::move(key), std::move(secret), std::move(public_key));
}

StatusOr<SigningKey> SigningKey::Generate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return InternalError(OpenSslError("Ed25519 keygen"));
  return FromEvp(Share(key));
}

StatusOr<SigningKey> SigningKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return InternalError("BIO_new_mem_buf failed");
  // No passphrase, ever: without a callback OpenSSL asks for one on the
  // terminal, so an encrypted signing.pem stopped a daemon (or the fuzzer)
  // at "Enter PEM pass phrase:" for as long as no one typed.
  bool asked = false;
  pem_password_cb* refuse = [](char*, int, int, void* flag) -> int {
    *static_cast<bool*>(flag) = true;
    return -1;
  };
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse, &asked);
  if (key == nullptr && asked) {
    ERR_clear_error();
    return InvalidArgumentError(
        "the private key is encrypted; ComputeNet keys are unencrypted PEM "
        "files protected by their mode (0600): decrypt it (openssl pkey)");
  }
  if (key == nullptr) {
    return InvalidArgumentError(OpenSslError("not a PEM private key"));
  }
  auto shared = Share(key);
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("private key is not Ed25519");
  }
  return FromEvp(std::move(shared));
}

StatusOr<SigningKey> SigningKey::LoadFile(const std::string& path) {
  CN_ASSIGN_OR_RETURN(std::string pem, ReadSecretFile(path));
  auto key = FromPem(pem);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

StatusOr<std::string> SigningKey::ToPem() const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()),
                                                &BIO_free);
  if (!bio) return InternalError("BIO_new failed");
  if (PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return InternalError(OpenSslError("PEM_write_bio_PrivateKey"));
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

StatusOr<std::string> SigningKey::Sign(std::string_view message) const {
  CN_RETURN_IF_ERROR(EnsureSodium());
  std::string signature(kSignatureBytes, '\0');
  if (crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()),
                           nullptr, Bytes(message), message.size(),
                           secret_->bytes) != 0) {
    return InternalError("crypto_sign_detached failed");
  }
  return signature;
}

std::string DomainSeparated(std::string_view domain, std::string_view message) {
  std::string out;
  out.reserve(domain.size() + 1 + message.size());
  out.append(domain);
  out.push_back('\0');
  out.append(message);
  return out;
}

}  // namespace computenet
