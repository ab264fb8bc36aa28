// Ed25519 signing and verification (libsodium; keys and PEM via OpenSSL 3
// EVP), and byte compatibility with OpenSSL's own Ed25519.
#include "computenet/common/ed25519.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include <string>
#include <vector>

#include "computenet/common/files.h"
#include "computenet/common/sha256.h"
#include "test_support.h"

namespace computenet {
namespace {

using ::testing::HasSubstr;

SigningKey MustGenerateKey() {
  auto key = SigningKey::Generate();
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

std::string MustSign(const SigningKey& key, std::string_view message) {
  auto signature = key.Sign(message);
  EXPECT_TRUE(signature.ok()) << signature.status().ToString();
  return signature.ok() ? *signature : std::string();
}

TEST(Ed25519Test, SignThenVerify) {
  SigningKey key = MustGenerateKey();
  std::string signature = MustSign(key, "hello");
  EXPECT_EQ(signature.size(), 64u);
  EXPECT_TRUE(key.verifying_key().Verify("hello", signature).ok());
}

TEST(Ed25519Test, SignaturesAreDeterministic) {
  // Ed25519 (RFC 8032) signatures depend only on key and message.
  SigningKey key = MustGenerateKey();
  EXPECT_EQ(MustSign(key, "m"), MustSign(key, "m"));
  EXPECT_NE(MustSign(key, "m"), MustSign(key, "n"));
}

TEST(Ed25519Test, EmptyMessageSignsAndVerifies) {
  SigningKey key = MustGenerateKey();
  std::string signature = MustSign(key, "");
  EXPECT_TRUE(key.verifying_key().Verify("", signature).ok());
  EXPECT_EQ(key.verifying_key().Verify("x", signature).code(),
            StatusCode::kUnauthenticated);
}

TEST(Ed25519Test, WrongMessageIsUnauthenticated) {
  SigningKey key = MustGenerateKey();
  std::string signature = MustSign(key, "pay 100");
  Status status = key.verifying_key().Verify("pay 900", signature);
  EXPECT_EQ(status.code(), StatusCode::kUnauthenticated);
}

TEST(Ed25519Test, FlippedSignatureBitIsUnauthenticated) {
  SigningKey key = MustGenerateKey();
  std::string signature = MustSign(key, "message");
  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    std::string bad = signature;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(key.verifying_key().Verify("message", bad).code(),
              StatusCode::kUnauthenticated)
        << "byte " << i;
  }
}

TEST(Ed25519Test, WrongLengthSignatureIsUnauthenticated) {
  SigningKey key = MustGenerateKey();
  std::string signature = MustSign(key, "message");
  const VerifyingKey& verifying = key.verifying_key();
  Status short_status = verifying.Verify("message", signature.substr(0, 63));
  EXPECT_EQ(short_status.code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(short_status.message(), HasSubstr("64"));
  EXPECT_EQ(verifying.Verify("message", signature + "x").code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(verifying.Verify("message", "").code(),
            StatusCode::kUnauthenticated);
}

TEST(Ed25519Test, PemRoundTripKeepsTheKey) {
  SigningKey key = MustGenerateKey();
  auto pem = key.ToPem();
  ASSERT_TRUE(pem.ok()) << pem.status().ToString();
  EXPECT_THAT(*pem, HasSubstr("BEGIN PRIVATE KEY"));
  auto loaded = SigningKey::FromPem(*pem);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->verifying_key().raw(), key.verifying_key().raw());
  // A signature by the reloaded key verifies under the original public key,
  // and is identical (Ed25519 is deterministic).
  std::string signature = MustSign(*loaded, "after reload");
  EXPECT_TRUE(key.verifying_key().Verify("after reload", signature).ok());
  EXPECT_EQ(signature, MustSign(key, "after reload"));
}

TEST(Ed25519Test, FromPemRejectsGarbage) {
  auto key = SigningKey::FromPem("-----BEGIN PRIVATE KEY-----\nnope\n");
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::FromPem("").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Ed25519Test, FromPemRefusesAnEncryptedKeyWithoutAskingForAPassphrase) {
  // Found by the identity fuzzer's seed fuzz/corpus/identity/encrypted_pem,
  // run on a terminal: OpenSSL's default callback prompted "Enter PEM pass
  // phrase:" and the caller (a daemon at start, the fuzzer) waited for it;
  // without a terminal the error said only "not a PEM private key".
  constexpr char kEncrypted[] =
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
      "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhIFb+kZTCeygICCAAw\n"
      "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEECM6DknxK86Efmm+7yU2HKkEQEba\n"
      "t9Yq7wldBM1HvjGWu/aPl9Jv85Z4E9JDiEHZiDAcP3IyqK2a/+D3bZwuMhpNlybI\n"
      "4PWcJmTB8dnOor0kEZo=\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n";
  auto key = SigningKey::FromPem(kEncrypted);
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(key.status().message(), HasSubstr("encrypted"));
}

TEST(Ed25519Test, LoadFileRequiresMode0600) {
  testing::TempDir dir;
  SigningKey key = MustGenerateKey();
  auto pem = key.ToPem();
  ASSERT_TRUE(pem.ok());
  const std::string path = dir.File("signing.pem");
  ASSERT_TRUE(WriteFileAtomically(path, *pem, 0600).ok());
  auto loaded = SigningKey::LoadFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->verifying_key().hex(), key.verifying_key().hex());

  ASSERT_TRUE(WriteFileAtomically(path, *pem, 0644).ok());
  EXPECT_EQ(SigningKey::LoadFile(path).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(SigningKey::LoadFile(dir.File("missing.pem")).status().code(),
            StatusCode::kNotFound);
}

TEST(Ed25519Test, HexRoundTrip) {
  SigningKey key = MustGenerateKey();
  const std::string hex = key.verifying_key().hex();
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex, HexEncode(key.verifying_key().raw()));
  auto parsed = VerifyingKey::FromHex(hex);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->raw(), key.verifying_key().raw());
  EXPECT_TRUE(parsed->Verify("m", MustSign(key, "m")).ok());
}

TEST(Ed25519Test, FromHexRejectsBadInput) {
  SigningKey key = MustGenerateKey();
  const std::string hex = key.verifying_key().hex();
  // Not hex at all.
  EXPECT_EQ(VerifyingKey::FromHex(std::string(64, 'z')).status().code(),
            StatusCode::kInvalidArgument);
  // Odd length.
  EXPECT_EQ(VerifyingKey::FromHex(hex.substr(0, 63)).status().code(),
            StatusCode::kInvalidArgument);
  // Valid hex, wrong length (31 and 33 bytes).
  EXPECT_EQ(VerifyingKey::FromHex(hex.substr(0, 62)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyingKey::FromHex(hex + "00").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyingKey::FromHex("").status().code(),
            StatusCode::kInvalidArgument);
  // Hex with a non-hex character in the middle.
  std::string broken = hex;
  broken[10] = 'g';
  EXPECT_EQ(VerifyingKey::FromHex(broken).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Ed25519Test, FromRawRejectsWrongLength) {
  EXPECT_EQ(VerifyingKey::FromRaw(std::string(31, '\x01')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyingKey::FromRaw(std::string(33, '\x01')).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Ed25519Test, DistinctKeysAreDistinct) {
  SigningKey a = MustGenerateKey();
  SigningKey b = MustGenerateKey();
  EXPECT_NE(a.verifying_key().raw(), b.verifying_key().raw());
}

// OpenSSL 3.0 pitfall: a reused EVP_MD_CTX re-initialised with another
// Ed25519 key silently keeps the first key. Interleave keys many times: each
// signature must verify under its own key only.
TEST(Ed25519Test, InterleavedVerificationUnderDifferentKeys) {
  SigningKey a = MustGenerateKey();
  SigningKey b = MustGenerateKey();
  const VerifyingKey& key_a = a.verifying_key();
  const VerifyingKey& key_b = b.verifying_key();
  for (int i = 0; i < 50; ++i) {
    const std::string message = "usage record " + std::to_string(i);
    const std::string sig_a = MustSign(a, message);
    const std::string sig_b = MustSign(b, message);
    ASSERT_NE(sig_a, sig_b);
    EXPECT_TRUE(key_a.Verify(message, sig_a).ok()) << i;
    EXPECT_EQ(key_b.Verify(message, sig_a).code(),
              StatusCode::kUnauthenticated)
        << "B accepted A's signature at iteration " << i;
    EXPECT_TRUE(key_b.Verify(message, sig_b).ok()) << i;
    EXPECT_EQ(key_a.Verify(message, sig_b).code(),
              StatusCode::kUnauthenticated)
        << "A accepted B's signature at iteration " << i;
  }
}

TEST(Ed25519Test, InterleavedVerificationWithKeysParsedFromHex) {
  // The broker verifies with keys built from enrolled hex, not the signer's
  // own VerifyingKey object.
  SigningKey a = MustGenerateKey();
  SigningKey b = MustGenerateKey();
  auto key_a = VerifyingKey::FromHex(a.verifying_key().hex());
  auto key_b = VerifyingKey::FromHex(b.verifying_key().hex());
  ASSERT_TRUE(key_a.ok());
  ASSERT_TRUE(key_b.ok());
  for (int i = 0; i < 20; ++i) {
    const std::string message = "m" + std::to_string(i);
    const std::string sig_a = MustSign(a, message);
    EXPECT_TRUE(key_a->Verify(message, sig_a).ok());
    EXPECT_FALSE(key_b->Verify(message, sig_a).ok());
    const std::string sig_b = MustSign(b, message);
    EXPECT_FALSE(key_a->Verify(message, sig_b).ok());
    EXPECT_TRUE(key_b->Verify(message, sig_b).ok());
  }
}

TEST(Ed25519Test, InterleavedSigningUnderDifferentKeys) {
  SigningKey a = MustGenerateKey();
  SigningKey b = MustGenerateKey();
  const std::string message = "the same message";
  // Reference signatures, each from a key used alone.
  const std::string first_a = MustSign(a, message);
  const std::string first_b = MustSign(b, message);
  for (int i = 0; i < 50; ++i) {
    const std::string sig_a = MustSign(a, message);
    const std::string sig_b = MustSign(b, message);
    EXPECT_EQ(sig_a, first_a) << "A's signature changed at iteration " << i;
    EXPECT_EQ(sig_b, first_b) << "B's signature changed at iteration " << i;
    EXPECT_TRUE(a.verifying_key().Verify(message, sig_a).ok());
    EXPECT_FALSE(a.verifying_key().Verify(message, sig_b).ok());
    EXPECT_TRUE(b.verifying_key().Verify(message, sig_b).ok());
    EXPECT_FALSE(b.verifying_key().Verify(message, sig_a).ok());
  }
}

TEST(Ed25519Test, ManyKeysEachVerifyOnlyTheirOwn) {
  std::vector<SigningKey> keys;
  for (int i = 0; i < 5; ++i) keys.push_back(MustGenerateKey());
  std::vector<std::string> signatures;
  for (const auto& key : keys) signatures.push_back(MustSign(key, "shared"));
  for (size_t signer = 0; signer < keys.size(); ++signer) {
    for (size_t verifier = 0; verifier < keys.size(); ++verifier) {
      Status status =
          keys[verifier].verifying_key().Verify("shared", signatures[signer]);
      EXPECT_EQ(status.ok(), signer == verifier)
          << "signer " << signer << " verifier " << verifier;
    }
  }
}

TEST(Ed25519Test, DomainSeparatedLayout) {
  EXPECT_EQ(DomainSeparated("dom", "msg"), std::string("dom\0msg", 7));
  EXPECT_EQ(DomainSeparated("", ""), std::string("\0", 1));
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(DomainSeparated("ab", "c"), DomainSeparated("a", "bc"));
}

TEST(Ed25519Test, DomainSeparationPreventsCrossDomainReplay) {
  SigningKey key = MustGenerateKey();
  const std::string payload = "job j-1: 3600 card-seconds";
  const std::string signature =
      MustSign(key, DomainSeparated("computenet.v1.UsageRecord", payload));
  EXPECT_TRUE(key.verifying_key()
                  .Verify(DomainSeparated("computenet.v1.UsageRecord", payload),
                          signature)
                  .ok());
  EXPECT_EQ(key.verifying_key()
                .Verify(DomainSeparated("computenet.v1.Statement", payload),
                        signature)
                .code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(key.verifying_key().Verify(payload, signature).code(),
            StatusCode::kUnauthenticated);
}

// --- Byte compatibility with OpenSSL's Ed25519 -----------------------------
// Keys generated and files written before the switch to libsodium, and
// signatures made by either side, must mean the same thing. The OpenSSL
// calls here use a fresh EVP_MD_CTX each time (see ed25519.h).

std::string Hex(std::string_view hex) {
  std::string raw;
  EXPECT_TRUE(HexDecode(hex, &raw)) << hex;
  return raw;
}

struct OpenSslKey {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr,
                                                          &EVP_PKEY_free};
};

OpenSslKey OpenSslPrivate(std::string_view seed) {
  OpenSslKey out;
  out.key.reset(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  EXPECT_NE(out.key, nullptr);
  return out;
}

OpenSslKey OpenSslPublic(std::string_view raw) {
  OpenSslKey out;
  out.key.reset(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
  EXPECT_NE(out.key, nullptr);
  return out;
}

std::string OpenSslPem(const OpenSslKey& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()),
                                                &BIO_free);
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key.key.get(), nullptr,
                                     nullptr, 0, nullptr, nullptr),
            1);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

std::string OpenSslSign(const OpenSslKey& key, std::string_view message) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr,
                               key.key.get()),
            1);
  std::string signature(64, '\0');
  size_t length = signature.size();
  EXPECT_EQ(EVP_DigestSign(ctx.get(),
                           reinterpret_cast<unsigned char*>(signature.data()),
                           &length,
                           reinterpret_cast<const unsigned char*>(
                               message.data()),
                           message.size()),
            1);
  return signature;
}

bool OpenSslVerifies(std::string_view public_raw, std::string_view message,
                     std::string_view signature) {
  OpenSslKey key = OpenSslPublic(public_raw);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr,
                                 key.key.get()),
            1);
  return EVP_DigestVerify(
             ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
             signature.size(),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size()) == 1;
}

// RFC 8032 section 7.1, tests 1-3: secret seed, public key, message, sig.
struct Rfc8032Vector {
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};
constexpr Rfc8032Vector kRfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519CompatTest, Rfc8032VectorsThroughAPemWrittenByOpenSsl) {
  for (const auto& vector : kRfc8032) {
    SCOPED_TRACE(vector.public_key);
    // The key file format is OpenSSL's PKCS#8 PEM, as before.
    auto key = SigningKey::FromPem(OpenSslPem(OpenSslPrivate(Hex(vector.seed))));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->verifying_key().hex(), vector.public_key);
    const std::string message = Hex(vector.message);
    EXPECT_EQ(HexEncode(MustSign(*key, message)), vector.signature);
    EXPECT_TRUE(
        key->verifying_key().Verify(message, Hex(vector.signature)).ok());
  }
}

TEST(Ed25519CompatTest, OpenSslSignaturesVerifyHereAndOursVerifyInOpenSsl) {
  for (int i = 0; i < 20; ++i) {
    SigningKey key = MustGenerateKey();
    auto pem = key.ToPem();
    ASSERT_TRUE(pem.ok());
    // The same key, as OpenSSL reads our PEM.
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())),
        &BIO_free);
    OpenSslKey openssl;
    openssl.key.reset(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    ASSERT_NE(openssl.key, nullptr);

    const std::string message = "usage record " + std::to_string(i) +
                                std::string(static_cast<size_t>(i) * 13, 'x');
    const std::string ours = MustSign(key, message);
    const std::string theirs = OpenSslSign(openssl, message);
    EXPECT_EQ(ours, theirs) << "Ed25519 is deterministic: same bytes";
    EXPECT_TRUE(key.verifying_key().Verify(message, theirs).ok());
    EXPECT_TRUE(OpenSslVerifies(key.verifying_key().raw(), message, ours));
    // And neither accepts the other's signature over another message.
    EXPECT_EQ(key.verifying_key().Verify(message + "!", theirs).code(),
              StatusCode::kUnauthenticated);
    EXPECT_FALSE(
        OpenSslVerifies(key.verifying_key().raw(), message + "!", ours));
  }
}

TEST(Ed25519CompatTest, NonCanonicalSIsRefused) {
  SigningKey key = MustGenerateKey();
  const std::string message = "m";
  std::string signature = MustSign(key, message);
  // S + L (little-endian), the same scalar mod L: malleable if accepted.
  const unsigned char kL[32] = {
      0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
      0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  unsigned carry = 0;
  for (size_t i = 0; i < 32; ++i) {
    unsigned sum = static_cast<unsigned char>(signature[32 + i]) + kL[i] + carry;
    signature[32 + i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  ASSERT_EQ(carry, 0u);
  EXPECT_EQ(key.verifying_key().Verify(message, signature).code(),
            StatusCode::kUnauthenticated);
  EXPECT_FALSE(OpenSslVerifies(key.verifying_key().raw(), message, signature));
}

TEST(Ed25519CompatTest, SmallOrderKeyVerifiesNothing) {
  // The identity point as a public key, with R = identity and S = 0: the
  // verification equation holds for every message. libsodium refuses
  // small-order keys and R points outright.
  std::string identity(32, '\0');
  identity[0] = 1;
  auto key = VerifyingKey::FromRaw(identity);
  ASSERT_TRUE(key.ok()) << "any 32 bytes are accepted as a key, as before";
  std::string signature(64, '\0');
  signature[0] = 1;
  EXPECT_EQ(key->Verify("anything", signature).code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(key->Verify("", signature).code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace computenet
