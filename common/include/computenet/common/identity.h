// Identity: the keys a party (broker, provider, consumer, admin) holds.
//
// On disk an identity is a directory written by `computenet keygen`:
//   curve.key     CURVE key pair for ZeroMQ (Z85), mode 0600
//   signing.pem   Ed25519 private key (PKCS#8 PEM), mode 0600
//   identity.pub  the public half, to hand to an operator (TOML):
//                   name = "site-a"
//                   curve_public = "<40 Z85 chars>"
//                   ed25519_public = "<64 hex chars>"
//
// Thread safety: Identity and PublicIdentity are immutable values once loaded.
#ifndef COMPUTENET_COMMON_IDENTITY_H_
#define COMPUTENET_COMMON_IDENTITY_H_

#include <string>
#include <string_view>

#include "computenet/common/ed25519.h"
#include "computenet/common/status.h"

namespace computenet {

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters

  // Returns a new pair from libzmq; UNAVAILABLE if libzmq lacks CURVE.
  static StatusOr<CurveKeyPair> Generate();
};

// OK if key is 40 Z85 characters that decode to 32 bytes.
Status ValidateCurveKey(std::string_view key);

// Names of parties: 1..64 of [A-Za-z0-9._-], starting alphanumeric.
Status ValidatePartyName(std::string_view name);

struct PublicIdentity {
  std::string name;
  std::string curve_public;    // Z85
  std::string ed25519_public;  // hex

  std::string ToToml() const;
  // INVALID_ARGUMENT on bad TOML, a missing or malformed field.
  static StatusOr<PublicIdentity> Parse(std::string_view toml);
  static StatusOr<PublicIdentity> LoadFile(const std::string& path);
};

class Identity {
 public:
  // New keys for `name`; INVALID_ARGUMENT on a bad name.
  static StatusOr<Identity> Generate(const std::string& name);
  // The same name and signing key with new CURVE keys: a broker rotates its
  // transport key this way (its ledger is bound to its signing key).
  StatusOr<Identity> WithNewCurveKey() const;
  // Reads the three files from dir; FAILED_PRECONDITION if a secret is not
  // 0600, NOT_FOUND if a file is missing.
  static StatusOr<Identity> Load(const std::string& dir);
  // Creates dir (0700) if needed and writes the three files; ALREADY_EXISTS
  // if dir already holds keys and overwrite is false.
  Status Save(const std::string& dir, bool overwrite = false) const;

  const std::string& name() const { return name_; }
  const CurveKeyPair& curve() const { return curve_; }
  const SigningKey& signing_key() const { return signing_; }
  PublicIdentity Public() const;

 private:
  Identity(std::string name, CurveKeyPair curve, SigningKey signing)
      : name_(std::move(name)),
        curve_(std::move(curve)),
        signing_(std::move(signing)) {}
  std::string name_;
  CurveKeyPair curve_;
  SigningKey signing_;
};

}  // namespace computenet

#endif  // COMPUTENET_COMMON_IDENTITY_H_
