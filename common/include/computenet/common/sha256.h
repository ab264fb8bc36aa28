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
// Returns false on odd length or a non-hex character.
bool HexDecode(std::string_view hex, std::string* bytes);

}  // namespace computenet

#endif  // COMPUTENET_COMMON_SHA256_H_
