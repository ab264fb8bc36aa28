// SHA-256 through OpenSSL EVP, for the ledger's hash chain and ids.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_COMMON_SHA256_H_
#define COMPUTENET_COMMON_SHA256_H_

#include <string>
#include <string_view>

namespace computenet {

// Returns the 32-byte digest of data.
std::string Sha256(std::string_view data);

// Lower-case hex of any bytes.
std::string HexEncode(std::string_view bytes);
// True for 64 lower-case hex characters: a SHA-256 as every digest on the
// wire is written (bundles, results).
bool IsSha256Hex(std::string_view text);

// Returns false on odd length or a non-hex character.
bool HexDecode(std::string_view hex, std::string* bytes);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_SHA256_H_
