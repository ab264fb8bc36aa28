#include "computenet/common/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>

#include "computenet/common/files.h"
#include "computenet/common/safe_text.h"

namespace computenet {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using CipherContext =
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

}  // namespace

bool IsEnvVariableName(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  }
  return true;
}

Status ValidateSecretEnv(const v1::JobSpec& spec) {
  if (static_cast<size_t>(spec.secret_env_size()) > kMaxSecretEnvEntries) {
    return InvalidArgumentError("job spec: more than " +
                                std::to_string(kMaxSecretEnvEntries) +
                                " secret env entries");
  }
  for (const auto& [name, value] : spec.secret_env()) {
    // Only the name is ever quoted: the value is the secret.
    const std::string quoted = "'" + SafeText(name, 64) + "'";
    if (!IsEnvVariableName(name)) {
      return InvalidArgumentError("job spec: secret env name " + quoted +
                                  " is not a variable name");
    }
    if (spec.env().count(name) != 0) {
      return InvalidArgumentError("job spec: " + quoted +
                                  " is in both env and secret env");
    }
    if (value.empty()) {
      return InvalidArgumentError("job spec: secret env " + quoted +
                                  " has an empty value");
    }
    // "***" stands for a value wherever a spec is stored or shown: as a
    // value it could not be told from a lost one.
    if (value == kSecretMask) {
      return InvalidArgumentError("job spec: secret env " + quoted +
                                  " is \"***\", the mask shown for values");
    }
    if (value.size() > kMaxSecretValueBytes) {
      return InvalidArgumentError("job spec: secret env " + quoted +
                                  " is longer than 16 KiB");
    }
    if (value.find('\0') != std::string::npos) {
      return InvalidArgumentError("job spec: secret env " + quoted +
                                  " contains a NUL byte");
    }
  }
  return OkStatus();
}

void MaskSecretEnv(v1::JobSpec* spec) {
  for (auto& [name, value] : *spec->mutable_secret_env()) value = kSecretMask;
}

bool HasSecretValues(const v1::JobSpec& spec) {
  for (const auto& [name, value] : spec.secret_env()) {
    if (value != kSecretMask) return true;
  }
  return false;
}

StatusOr<std::shared_ptr<const SecretBox>> SecretBox::LoadOrCreate(
    const std::string& path) {
  auto text = ReadSecretFile(path);
  if (text.status().code() == StatusCode::kNotFound) {
    std::string key(kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()),
                   static_cast<int>(key.size())) != 1) {
      return InternalError("no random bytes for " + path);
    }
    std::string hex = Hex(key);
    Status written = WriteFileAtomically(path, hex + "\n", 0600);
    OPENSSL_cleanse(hex.data(), hex.size());
    if (!written.ok()) return written;
    return FromKey(key);
  }
  if (!text.ok()) return text.status();
  std::string hex = *text;
  OPENSSL_cleanse(text->data(), text->size());
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) {
    hex.pop_back();
  }
  if (hex.size() != 2 * kKeyBytes) {
    return DataLossError(path + " does not hold a 32-byte key (64 hex digits)");
  }
  std::string key(kKeyBytes, '\0');
  for (size_t i = 0; i < kKeyBytes; ++i) {
    const int high = HexDigit(hex[2 * i]), low = HexDigit(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return DataLossError(path +
                           " does not hold a 32-byte key (64 hex digits)");
    }
    key[i] = static_cast<char>(high * 16 + low);
  }
  OPENSSL_cleanse(hex.data(), hex.size());
  return FromKey(key);
}

StatusOr<std::shared_ptr<const SecretBox>> SecretBox::FromKey(
    const std::string& key) {
  if (key.size() != kKeyBytes) {
    return InvalidArgumentError("a secret box key is 32 bytes");
  }
  return std::shared_ptr<const SecretBox>(new SecretBox(key));
}

SecretBox::~SecretBox() { OPENSSL_cleanse(key_.data(), key_.size()); }

StatusOr<std::string> SecretBox::Seal(const std::string& plaintext,
                                      const std::string& context) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) {
    return InternalError("seal: no random nonce");
  }
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  auto* body = nonce + kNonceBytes;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()),
                         nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(
          ctx.get(), body, &length,
          reinterpret_cast<const unsigned char*>(plaintext.data()),
          static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + length, &length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kTagBytes),
                          body + plaintext.size()) != 1) {
    return InternalError("seal: AES-256-GCM failed");
  }
  return out;
}

StatusOr<std::string> SecretBox::Open(const std::string& sealed,
                                      const std::string& context) const {
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return DataLossError("sealed secret is truncated");
  }
  const size_t body_size = sealed.size() - kNonceBytes - kTagBytes;
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  const auto* body = nonce + kNonceBytes;
  std::string tag = sealed.substr(kNonceBytes + body_size);
  std::string out(body_size, '\0');
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  auto* plain = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()),
                         nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain, &length, body,
                        static_cast<int>(body_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kTagBytes), tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain + length, &length) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return DataLossError(
        "sealed secret does not open under this broker's secrets.key "
        "(another key, another job, or changed)");
  }
  return out;
}

}  // namespace computenet
