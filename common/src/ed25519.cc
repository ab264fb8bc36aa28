#include "computenet/common/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

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

StatusOr<VerifyingKey> VerifyingKey::FromRaw(std::string_view raw) {
  if (raw.size() != kPublicKeyBytes) {
    return InvalidArgumentError("Ed25519 public key must be 32 bytes, got " +
                                std::to_string(raw.size()));
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (key == nullptr) {
    return InvalidArgumentError(OpenSslError("bad Ed25519 public key"));
  }
  return VerifyingKey(Share(key), std::string(raw));
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
  // A fresh context per verification: see the header.
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return InternalError("EVP_MD_CTX_new failed");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) !=
      1) {
    return InternalError(OpenSslError("EVP_DigestVerifyInit"));
  }
  int result = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
      signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
      message.size());
  ERR_clear_error();
  if (result != 1) return UnauthenticatedError("signature does not verify");
  return OkStatus();
}

StatusOr<SigningKey> SigningKey::Generate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return InternalError(OpenSslError("Ed25519 keygen"));
  auto shared = Share(key);
  CN_ASSIGN_OR_RETURN(std::string raw, RawPublic(key));
  CN_ASSIGN_OR_RETURN(VerifyingKey public_key, VerifyingKey::FromRaw(raw));
  return SigningKey(std::move(shared), std::move(public_key));
}

StatusOr<SigningKey> SigningKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return InternalError("BIO_new_mem_buf failed");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return InvalidArgumentError(OpenSslError("not a PEM private key"));
  }
  auto shared = Share(key);
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("private key is not Ed25519");
  }
  CN_ASSIGN_OR_RETURN(std::string raw, RawPublic(key));
  CN_ASSIGN_OR_RETURN(VerifyingKey public_key, VerifyingKey::FromRaw(raw));
  return SigningKey(std::move(shared), std::move(public_key));
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
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return InternalError("EVP_MD_CTX_new failed");
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) !=
      1) {
    return InternalError(OpenSslError("EVP_DigestSignInit"));
  }
  std::string signature(kSignatureBytes, '\0');
  size_t length = signature.size();
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()),
                     &length,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      length != kSignatureBytes) {
    return InternalError(OpenSslError("EVP_DigestSign"));
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
