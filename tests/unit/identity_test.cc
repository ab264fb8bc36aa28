// Identity: key generation, the on-disk layout and its permissions, and
// parsing of identity.pub.
#include "computenet/common/identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "computenet/common/files.h"
#include "test_support.h"

namespace computenet {
namespace {

using ::testing::HasSubstr;
using testing::MustGenerateIdentity;
using testing::TempDir;

int ModeOf(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return -1;
  return static_cast<int>(info.st_mode & 07777);
}

std::string Slurp(const std::string& path) {
  auto text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : std::string();
}

std::string PublicToml(const std::string& name, const std::string& curve,
                       const std::string& ed25519) {
  return "name = \"" + name + "\"\ncurve_public = \"" + curve +
         "\"\ned25519_public = \"" + ed25519 + "\"\n";
}

TEST(IdentityTest, GenerateProducesWellFormedKeys) {
  Identity identity = MustGenerateIdentity("site-a");
  EXPECT_EQ(identity.name(), "site-a");
  EXPECT_EQ(identity.curve().public_z85.size(), 40u);
  EXPECT_EQ(identity.curve().secret_z85.size(), 40u);
  EXPECT_TRUE(ValidateCurveKey(identity.curve().public_z85).ok());
  EXPECT_TRUE(ValidateCurveKey(identity.curve().secret_z85).ok());
  EXPECT_NE(identity.curve().public_z85, identity.curve().secret_z85);
  PublicIdentity pub = identity.Public();
  EXPECT_EQ(pub.name, "site-a");
  EXPECT_EQ(pub.curve_public, identity.curve().public_z85);
  EXPECT_EQ(pub.ed25519_public, identity.signing_key().verifying_key().hex());
}

TEST(IdentityTest, GenerateRejectsBadName) {
  EXPECT_EQ(Identity::Generate("").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Identity::Generate("-lead").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Identity::Generate("has space").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(IdentityTest, SaveLoadRoundTrip) {
  TempDir dir;
  const std::string keys = dir.File("keys");
  Identity original = MustGenerateIdentity("site-a");
  ASSERT_TRUE(original.Save(keys).ok());
  auto loaded = Identity::Load(keys);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->name(), "site-a");
  EXPECT_EQ(loaded->curve().public_z85, original.curve().public_z85);
  EXPECT_EQ(loaded->curve().secret_z85, original.curve().secret_z85);
  EXPECT_EQ(loaded->signing_key().verifying_key().raw(),
            original.signing_key().verifying_key().raw());
  // The loaded signing key is the same private key.
  auto signature = loaded->signing_key().Sign("hello");
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE(
      original.signing_key().verifying_key().Verify("hello", *signature).ok());
}

TEST(IdentityTest, SaveWritesSecretsPrivateAndPublicReadable) {
  TempDir dir;
  const std::string keys = dir.File("keys");
  ASSERT_TRUE(MustGenerateIdentity("site-a").Save(keys).ok());
  EXPECT_EQ(ModeOf(keys + "/curve.key"), 0600);
  EXPECT_EQ(ModeOf(keys + "/signing.pem"), 0600);
  EXPECT_EQ(ModeOf(keys + "/identity.pub"), 0644);
  EXPECT_EQ(ModeOf(keys), 0700);
}

TEST(IdentityTest, SecretsDoNotLeakIntoPublicFile) {
  TempDir dir;
  Identity identity = MustGenerateIdentity("site-a");
  ASSERT_TRUE(identity.Save(dir.path()).ok());
  const std::string pub = Slurp(dir.File("identity.pub"));
  EXPECT_THAT(pub, HasSubstr(identity.curve().public_z85));
  EXPECT_THAT(pub, ::testing::Not(HasSubstr(identity.curve().secret_z85)));
  EXPECT_THAT(pub, ::testing::Not(HasSubstr("PRIVATE")));
}

TEST(IdentityTest, LoadRefusesGroupReadableCurveKey) {
  TempDir dir;
  ASSERT_TRUE(MustGenerateIdentity("site-a").Save(dir.path()).ok());
  ASSERT_EQ(::chmod(dir.File("curve.key").c_str(), 0644), 0);
  auto loaded = Identity::Load(dir.path());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(), HasSubstr("curve.key"));
}

TEST(IdentityTest, LoadRefusesGroupReadableSigningKey) {
  TempDir dir;
  ASSERT_TRUE(MustGenerateIdentity("site-a").Save(dir.path()).ok());
  ASSERT_EQ(::chmod(dir.File("signing.pem").c_str(), 0640), 0);
  EXPECT_EQ(Identity::Load(dir.path()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(IdentityTest, LoadMissingFilesIsNotFound) {
  TempDir dir;
  EXPECT_EQ(Identity::Load(dir.path()).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(MustGenerateIdentity("site-a").Save(dir.path()).ok());
  ASSERT_EQ(::unlink(dir.File("signing.pem").c_str()), 0);
  EXPECT_EQ(Identity::Load(dir.path()).status().code(), StatusCode::kNotFound);
}

TEST(IdentityTest, SaveRefusesToOverwriteUnlessAsked) {
  TempDir dir;
  Identity first = MustGenerateIdentity("site-a");
  Identity second = MustGenerateIdentity("site-a");
  ASSERT_TRUE(first.Save(dir.path()).ok());
  Status again = second.Save(dir.path());
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  // The first identity is untouched.
  auto loaded = Identity::Load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->curve().public_z85, first.curve().public_z85);

  ASSERT_TRUE(second.Save(dir.path(), /*overwrite=*/true).ok());
  loaded = Identity::Load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->curve().public_z85, second.curve().public_z85);
  EXPECT_EQ(loaded->signing_key().verifying_key().hex(),
            second.signing_key().verifying_key().hex());
}

TEST(IdentityTest, LoadDetectsPublicFileForOtherKeys) {
  TempDir dir;
  TempDir other;
  ASSERT_TRUE(MustGenerateIdentity("site-a").Save(dir.path()).ok());
  ASSERT_TRUE(MustGenerateIdentity("site-a").Save(other.path()).ok());
  // identity.pub from another identity of the same name.
  ASSERT_TRUE(WriteFileAtomically(dir.File("identity.pub"),
                                  Slurp(other.File("identity.pub")), 0644)
                  .ok());
  auto loaded = Identity::Load(dir.path());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(), HasSubstr("does not match"));
}

TEST(IdentityTest, LoadDetectsPublicFileWithForeignSigningKey) {
  TempDir dir;
  Identity identity = MustGenerateIdentity("site-a");
  Identity stranger = MustGenerateIdentity("site-a");
  ASSERT_TRUE(identity.Save(dir.path()).ok());
  // Right CURVE key, someone else's Ed25519 key.
  PublicIdentity forged = identity.Public();
  forged.ed25519_public = stranger.Public().ed25519_public;
  ASSERT_TRUE(
      WriteFileAtomically(dir.File("identity.pub"), forged.ToToml(), 0644).ok());
  EXPECT_EQ(Identity::Load(dir.path()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(PublicIdentityTest, ToTomlParsesBack) {
  PublicIdentity pub = MustGenerateIdentity("broker.main_1").Public();
  auto parsed = PublicIdentity::Parse(pub.ToToml());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->name, pub.name);
  EXPECT_EQ(parsed->curve_public, pub.curve_public);
  EXPECT_EQ(parsed->ed25519_public, pub.ed25519_public);
}

TEST(PublicIdentityTest, LoadFileReadsSavedIdentity) {
  TempDir dir;
  Identity identity = MustGenerateIdentity("site-a");
  ASSERT_TRUE(identity.Save(dir.path()).ok());
  auto pub = PublicIdentity::LoadFile(dir.File("identity.pub"));
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(pub->curve_public, identity.curve().public_z85);
  EXPECT_EQ(PublicIdentity::LoadFile(dir.File("nope.pub")).status().code(),
            StatusCode::kNotFound);
}

class PublicIdentityParseTest : public ::testing::Test {
 protected:
  PublicIdentity good_ = MustGenerateIdentity("site-a").Public();
};

TEST_F(PublicIdentityParseTest, AcceptsHandWrittenToml) {
  auto parsed = PublicIdentity::Parse(
      PublicToml(good_.name, good_.curve_public, good_.ed25519_public));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->name, "site-a");
}

TEST_F(PublicIdentityParseTest, RejectsMalformedToml) {
  auto parsed = PublicIdentity::Parse("name = \"site-a\nthis is not toml");
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("TOML"));
  EXPECT_EQ(PublicIdentity::Parse("[[[").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PublicIdentityParseTest, RejectsMissingKeys) {
  auto no_name = PublicIdentity::Parse("curve_public = \"" +
                                       good_.curve_public +
                                       "\"\ned25519_public = \"" +
                                       good_.ed25519_public + "\"\n");
  EXPECT_EQ(no_name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_name.status().message(), HasSubstr("name"));

  auto no_curve = PublicIdentity::Parse("name = \"site-a\"\ned25519_public = \"" +
                                        good_.ed25519_public + "\"\n");
  EXPECT_EQ(no_curve.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_curve.status().message(), HasSubstr("curve_public"));

  auto no_ed = PublicIdentity::Parse("name = \"site-a\"\ncurve_public = \"" +
                                     good_.curve_public + "\"\n");
  EXPECT_EQ(no_ed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_ed.status().message(), HasSubstr("ed25519_public"));

  EXPECT_EQ(PublicIdentity::Parse("").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PublicIdentityParseTest, RejectsNonStringValues) {
  auto parsed = PublicIdentity::Parse("name = 7\ncurve_public = \"" +
                                      good_.curve_public +
                                      "\"\ned25519_public = \"" +
                                      good_.ed25519_public + "\"\n");
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PublicIdentityParseTest, RejectsBadCurveKey) {
  // Too short.
  EXPECT_EQ(PublicIdentity::Parse(PublicToml("site-a", "abc",
                                             good_.ed25519_public))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  // 40 characters, but '"'-free characters outside the Z85 alphabet.
  EXPECT_EQ(PublicIdentity::Parse(PublicToml("site-a", std::string(40, '~'),
                                             good_.ed25519_public))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicIdentity::Parse(PublicToml("site-a", std::string(40, ','),
                                             good_.ed25519_public))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PublicIdentityParseTest, RejectsBadEd25519Hex) {
  EXPECT_EQ(PublicIdentity::Parse(PublicToml("site-a", good_.curve_public,
                                             std::string(64, 'x')))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicIdentity::Parse(PublicToml("site-a", good_.curve_public,
                                             good_.ed25519_public.substr(2)))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PublicIdentityParseTest, RejectsBadName) {
  EXPECT_EQ(PublicIdentity::Parse(PublicToml("bad name", good_.curve_public,
                                             good_.ed25519_public))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicIdentity::Parse(
                PublicToml("", good_.curve_public, good_.ed25519_public))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(ValidatePartyNameTest, AcceptsValidNames) {
  for (const char* name : {"a", "Z", "0", "site-a", "site_a", "site.a",
                           "A1-b_c.d", "9lives"}) {
    EXPECT_TRUE(ValidatePartyName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidatePartyName(std::string(64, 'a')).ok());
}

TEST(ValidatePartyNameTest, RejectsInvalidNames) {
  for (const char* name : {"", "-a", ".a", "_a", "a b", "a/b", "a:b", "a\"b",
                           "caf\xc3\xa9", "a\nb", "a@b"}) {
    EXPECT_EQ(ValidatePartyName(name).code(), StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_EQ(ValidatePartyName(std::string(65, 'a')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidatePartyName(std::string("a\0b", 3)).code(),
            StatusCode::kInvalidArgument);
}

TEST(ValidateCurveKeyTest, Cases) {
  Identity identity = MustGenerateIdentity("x");
  EXPECT_TRUE(ValidateCurveKey(identity.curve().public_z85).ok());
  EXPECT_FALSE(ValidateCurveKey("").ok());
  EXPECT_FALSE(ValidateCurveKey(identity.curve().public_z85.substr(1)).ok());
  EXPECT_FALSE(ValidateCurveKey(identity.curve().public_z85 + "0").ok());
  EXPECT_FALSE(ValidateCurveKey(std::string(40, '~')).ok());
}

}  // namespace
}  // namespace computenet
