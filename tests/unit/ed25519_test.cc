// Ed25519 signing and verification (OpenSSL 3 EVP).
#include "computenet/common/ed25519.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace computenet
