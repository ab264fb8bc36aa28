// BundleStore: a directory of bundles named by digest, filled in chunks.
// A broker keeps the bundles its consumers uploaded (or a peer relayed to
// it) here; a site keeps the inputs it fetched and the results it packed.
// An upload is resumable: the bytes received so far sit in
// "<digest>.part", and a sender asks Progress() where to go on. The last
// chunk is checked: bytes that do not hash to the digest they were sent
// under are thrown away (DATA_LOSS) and never become a bundle, so whatever
// Read() serves has the digest it is named by.
//
// Thread safety: not thread-safe; one owner (a broker's loop thread, a
// site agent's loop) drives it. Separate stores on one directory are not
// supported.
#ifndef COMPUTENET_BUNDLES_BUNDLE_STORE_H_
#define COMPUTENET_BUNDLES_BUNDLE_STORE_H_

#include <openssl/evp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::bundles {

// The most bundle bytes in one chunk message: with the envelope and fields
// around it well under the 1 MiB frame limit.
inline constexpr uint64_t kChunkBytes = 256 * 1024;

struct BundleStoreOptions {
  // Where the bundles live; created (mode 0700) if missing. Required.
  std::string dir;
  // The largest bundle accepted. Default 1 GiB.
  uint64_t max_bundle_bytes = uint64_t{1} << 30;
};

class BundleStore {
 public:
  // How far one bundle is: `have` bytes of `total` (total 0 = unknown:
  // nothing received yet), complete once the whole bundle passed its check.
  struct Progress {
    uint64_t have = 0;
    uint64_t total = 0;
    bool complete = false;
  };

  // Creates the directory if needed and drops half-written temporaries.
  // FAILED_PRECONDITION if it cannot be created or written.
  static StatusOr<std::unique_ptr<BundleStore>> Open(BundleStoreOptions options);
  ~BundleStore();
  BundleStore(const BundleStore&) = delete;
  BundleStore& operator=(const BundleStore&) = delete;

  // Where `digest` stands. INVALID_ARGUMENT for a malformed digest.
  StatusOr<Progress> Stat(const std::string& digest) const;

  // Adds `data` at `offset` of the bundle `digest` of `total` bytes and
  // returns the progress after it. A chunk that ends at or before what is
  // held is a repeat and changes nothing; one that starts past it is
  // OUT_OF_RANGE (send from Progress().have); INVALID_ARGUMENT for a bad
  // digest, a total that differs from the one the upload began with, or a
  // chunk past the total or over kChunkBytes; RESOURCE_EXHAUSTED for a
  // total over max_bundle_bytes; DATA_LOSS when the finished bytes do not
  // hash to `digest` (the partial upload is removed); INTERNAL on I/O.
  StatusOr<Progress> Append(const std::string& digest, uint64_t total,
                            uint64_t offset, std::string_view data);

  // Up to max_bytes (at most kChunkBytes) of a complete bundle from offset.
  // NOT_FOUND if the bundle is not complete here; OUT_OF_RANGE for an
  // offset past its end.
  StatusOr<std::string> Read(const std::string& digest, uint64_t offset,
                             uint64_t max_bytes) const;

  // Moves a finished file (e.g. a packed result) in under its digest,
  // checking it. OK if the bundle was already here (the file is removed).
  Status Adopt(const std::string& file, const std::string& digest);

  // Moves a bundle that `other` holds complete (and so has checked) in
  // under the same digest, without hashing it again. OK if it was here.
  // NOT_FOUND if other does not hold it complete.
  Status AdoptFrom(BundleStore& other, const std::string& digest);

  // Removes a bundle and any partial upload of it. OK if neither exists.
  Status Remove(const std::string& digest);

  // Facts kept beside a bundle, one line each, in "<digest>.notes" (they
  // outlive a restart; a bundle's data need not be here: a broker notes
  // uploads it only relayed). The broker keeps "owner <party>" (who may
  // use it) and "relayed <party> <peer>" lines. INVALID_ARGUMENT for a bad
  // digest or a line with a control character or over 512 bytes.
  Status AddNote(const std::string& digest, const std::string& line);
  std::vector<std::string> Notes(const std::string& digest) const;
  bool HasNote(const std::string& digest, const std::string& line) const;
  // Bytes of the complete bundles that carry `line` as a note.
  uint64_t BytesWithNote(const std::string& line) const;

  // Marks a bundle as used now (its file's time), for RemoveUnusedSince.
  void Touch(const std::string& digest);
  // Removes bundles, their notes and partial uploads last used or written
  // before cutoff_ms (ms since the epoch); returns the digests removed.
  std::vector<std::string> RemoveUnusedSince(int64_t cutoff_ms);

  // The file of a complete bundle (whether or not it exists).
  std::string PathOf(const std::string& digest) const;
  // Bytes of complete bundles and partial uploads in the directory.
  uint64_t BytesStored() const;

 private:
  explicit BundleStore(BundleStoreOptions options);
  struct Upload {
    uint64_t total = 0;
    uint64_t have = 0;
    // The running hash of bytes 0..have; rebuilt from the file after a
    // restart, so the last chunk costs one hash update, not a re-read.
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> hash{nullptr,
                                                            EVP_MD_CTX_free};
  };
  std::string PartPath(const std::string& digest) const;
  StatusOr<Upload*> UploadFor(const std::string& digest, uint64_t total);

  BundleStoreOptions options_;
  std::map<std::string, Upload> uploads_;  // by digest, this process's
};

}  // namespace computenet::bundles

#endif  // COMPUTENET_BUNDLES_BUNDLE_STORE_H_
