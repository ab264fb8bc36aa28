#include "computenet/common/identity.h"

#include <sys/stat.h>
#include <zmq.h>

#include <cerrno>
#include <filesystem>
#include <cstring>
#include <sstream>
#include <toml++/toml.h>

#include "computenet/common/files.h"

namespace computenet {
namespace {

constexpr char kCurveFile[] = "/curve.key";
constexpr char kSigningFile[] = "/signing.pem";
constexpr char kPublicFile[] = "/identity.pub";

StatusOr<std::string> RequiredString(const toml::table& table,
                                     std::string_view key) {
  const auto* node = table.get(key);
  if (node == nullptr) {
    return InvalidArgumentError("missing key '" + std::string(key) + "'");
  }
  auto value = node->value<std::string>();
  if (!value) {
    return InvalidArgumentError("key '" + std::string(key) +
                                "' must be a string");
  }
  return *value;
}

StatusOr<toml::table> ParseToml(std::string_view text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << "TOML: " << error.description() << " at line "
        << error.source().begin.line;
    return InvalidArgumentError(out.str());
  }
}

bool FileExists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

StatusOr<CurveKeyPair> CurveKeyPair::Generate() {
  char public_key[41];
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return UnavailableError(std::string("zmq_curve_keypair: ") +
                            zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{public_key, secret_key};
}

Status ValidateCurveKey(std::string_view key) {
  if (key.size() != 40) {
    return InvalidArgumentError("CURVE key must be 40 Z85 characters");
  }
  uint8_t decoded[32];
  std::string copy(key);
  if (zmq_z85_decode(decoded, copy.c_str()) == nullptr) {
    return InvalidArgumentError("CURVE key is not valid Z85");
  }
  return OkStatus();
}

Status ValidatePartyName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgumentError("name must be 1..64 characters");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9');
    if (alnum) continue;
    if (i > 0 && (c == '.' || c == '_' || c == '-')) continue;
    return InvalidArgumentError("name '" + std::string(name) +
                                "' may hold only [A-Za-z0-9._-] and must "
                                "start alphanumeric");
  }
  return OkStatus();
}

std::string PublicIdentity::ToToml() const {
  toml::table table{{"name", name},
                    {"curve_public", curve_public},
                    {"ed25519_public", ed25519_public}};
  std::ostringstream out;
  out << "# ComputeNet public identity: hand this file to your broker's "
         "operator.\n"
      << table << "\n";
  return out.str();
}

StatusOr<PublicIdentity> PublicIdentity::Parse(std::string_view text) {
  CN_ASSIGN_OR_RETURN(toml::table table, ParseToml(text));
  PublicIdentity identity;
  CN_ASSIGN_OR_RETURN(identity.name, RequiredString(table, "name"));
  CN_ASSIGN_OR_RETURN(identity.curve_public,
                      RequiredString(table, "curve_public"));
  CN_ASSIGN_OR_RETURN(identity.ed25519_public,
                      RequiredString(table, "ed25519_public"));
  CN_RETURN_IF_ERROR(ValidatePartyName(identity.name));
  CN_RETURN_IF_ERROR(ValidateCurveKey(identity.curve_public));
  auto key = VerifyingKey::FromHex(identity.ed25519_public);
  if (!key.ok()) return key.status();
  return identity;
}

StatusOr<PublicIdentity> PublicIdentity::LoadFile(const std::string& path) {
  CN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 64 << 10));
  auto identity = Parse(text);
  if (!identity.ok()) return identity.status().WithContext(path);
  return identity;
}

StatusOr<Identity> Identity::Generate(const std::string& name) {
  CN_RETURN_IF_ERROR(ValidatePartyName(name));
  CN_ASSIGN_OR_RETURN(CurveKeyPair curve, CurveKeyPair::Generate());
  CN_ASSIGN_OR_RETURN(SigningKey signing, SigningKey::Generate());
  return Identity(name, std::move(curve), std::move(signing));
}

StatusOr<Identity> Identity::WithNewCurveKey() const {
  CN_ASSIGN_OR_RETURN(CurveKeyPair curve, CurveKeyPair::Generate());
  return Identity(name_, std::move(curve), signing_);
}

StatusOr<Identity> Identity::Load(const std::string& dir) {
  CN_ASSIGN_OR_RETURN(PublicIdentity public_identity,
                      PublicIdentity::LoadFile(dir + kPublicFile));
  CN_ASSIGN_OR_RETURN(std::string curve_text,
                      ReadSecretFile(dir + kCurveFile));
  auto curve_table = ParseToml(curve_text);
  if (!curve_table.ok()) {
    return curve_table.status().WithContext(dir + kCurveFile);
  }
  CurveKeyPair curve;
  CN_ASSIGN_OR_RETURN(curve.public_z85, RequiredString(*curve_table, "public"));
  CN_ASSIGN_OR_RETURN(curve.secret_z85, RequiredString(*curve_table, "secret"));
  CN_RETURN_IF_ERROR(ValidateCurveKey(curve.public_z85));
  CN_RETURN_IF_ERROR(ValidateCurveKey(curve.secret_z85));
  CN_ASSIGN_OR_RETURN(SigningKey signing,
                      SigningKey::LoadFile(dir + kSigningFile));
  if (curve.public_z85 != public_identity.curve_public ||
      signing.verifying_key().hex() != public_identity.ed25519_public) {
    return FailedPreconditionError(dir +
                                   ": identity.pub does not match the keys");
  }
  return Identity(public_identity.name, std::move(curve), std::move(signing));
}

Status Identity::Save(const std::string& dir, bool overwrite) const {
  // Parents as needed; the key directory itself is private.
  std::error_code error;
  const bool created = std::filesystem::create_directories(dir, error);
  if (error) return InternalError("mkdir " + dir + ": " + error.message());
  if (created && ::chmod(dir.c_str(), 0700) != 0) {
    return InternalError("chmod " + dir + ": " + std::strerror(errno));
  }
  if (!overwrite && (FileExists(dir + kCurveFile) ||
                     FileExists(dir + kSigningFile))) {
    return AlreadyExistsError(dir + " already holds keys");
  }
  toml::table curve_table{{"public", curve_.public_z85},
                          {"secret", curve_.secret_z85}};
  std::ostringstream curve_text;
  curve_text << "# ComputeNet CURVE key pair: keep secret.\n"
             << curve_table << "\n";
  CN_RETURN_IF_ERROR(
      WriteFileAtomically(dir + kCurveFile, curve_text.str(), 0600));
  CN_ASSIGN_OR_RETURN(std::string pem, signing_.ToPem());
  CN_RETURN_IF_ERROR(WriteFileAtomically(dir + kSigningFile, pem, 0600));
  return WriteFileAtomically(dir + kPublicFile, Public().ToToml(), 0644);
}

PublicIdentity Identity::Public() const {
  return PublicIdentity{name_, curve_.public_z85,
                        signing_.verifying_key().hex()};
}

}  // namespace computenet
