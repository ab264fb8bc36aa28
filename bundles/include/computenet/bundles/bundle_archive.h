// Bundles: how a job's inputs and results travel. A bundle is one
// deterministic tar archive (sorted entries, zero times and owners, modes
// 0644/0755 only), named by the SHA-256 of its bytes, so the same files make
// the same digest on every machine and a site that has a digest has exactly
// those bytes. docs/sdk.md "Inputs and results" and docs/protocol.md
// "Bundles" describe the transfer; this header only packs and unpacks.
//
// Packing takes regular files and directories (a symlink is followed when it
// names a regular file; any other special file is refused). Unpacking is
// defensive: the archive may come from a stranger, so only plain files and
// directories with relative names inside the destination are written, and
// the total size and entry count are bounded.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BUNDLES_BUNDLE_ARCHIVE_H_
#define COMPUTENET_BUNDLES_BUNDLE_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::bundles {

// One bundle on disk: where, its digest (64 lower-case hex characters of
// the SHA-256 of the file) and its size in bytes.
struct PackedBundle {
  std::string path;
  std::string digest;
  uint64_t size = 0;
};

// Limits for both directions. Defaults: 1 GiB of archive, 100,000 entries.
struct ArchiveLimits {
  uint64_t max_bytes = uint64_t{1} << 30;
  uint64_t max_entries = 100'000;
};

// Packs `paths` (files or directories; each appears in the archive under its
// own base name, a directory with everything below it) into `out_file`.
// INVALID_ARGUMENT for a missing path, two paths with the same base name, a
// special file or a name the archive cannot hold; RESOURCE_EXHAUSTED when
// the archive would pass limits.max_bytes (the file is removed then);
// INTERNAL on I/O errors.
StatusOr<PackedBundle> PackPaths(const std::vector<std::string>& paths,
                                 const std::string& out_file,
                                 const ArchiveLimits& limits = {});

// Packs what is inside `dir` (its entries at the archive's top level; an
// empty directory makes a valid, empty archive). Errors as PackPaths.
StatusOr<PackedBundle> PackDirectoryContents(const std::string& dir,
                                             const std::string& out_file,
                                             const ArchiveLimits& limits = {});

// Unpacks `archive_file` into `dest_dir` (created if missing). DATA_LOSS for
// an archive that is not a tar or is cut short; INVALID_ARGUMENT for an
// absolute name, a ".." component, a link, device or other special entry;
// RESOURCE_EXHAUSTED past the limits (counting the unpacked bytes);
// ALREADY_EXISTS when an entry would replace a file already there. What was
// written before an error stays (the caller owns dest_dir).
Status Unpack(const std::string& archive_file, const std::string& dest_dir,
              const ArchiveLimits& limits = {});

// SHA-256 of a file, as 64 lower-case hex characters. NOT_FOUND / INTERNAL.
StatusOr<std::string> FileDigest(const std::string& path);

// True for 64 lower-case hex characters (what every digest on the wire is).
bool IsDigest(const std::string& text);

}  // namespace computenet::bundles

#endif  // COMPUTENET_BUNDLES_BUNDLE_ARCHIVE_H_
