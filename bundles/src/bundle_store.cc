#include "computenet/bundles/bundle_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "computenet/bundles/bundle_archive.h"
#include "computenet/common/files.h"
#include "computenet/common/sha256.h"

namespace computenet::bundles {
namespace {

namespace fs = std::filesystem;

Status CheckDigest(const std::string& digest) {
  if (!IsDigest(digest)) {
    return InvalidArgumentError(
        "a bundle digest is 64 lower-case hex characters (SHA-256)");
  }
  return OkStatus();
}

std::string FinalHex(EVP_MD_CTX* hash) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(hash, digest, &length);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), length));
}

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return InternalError("cannot open " + dir);
  ::fsync(fd);
  ::close(fd);
  return OkStatus();
}

}  // namespace

BundleStore::BundleStore(BundleStoreOptions options)
    : options_(std::move(options)) {}

BundleStore::~BundleStore() = default;

StatusOr<std::unique_ptr<BundleStore>> BundleStore::Open(
    BundleStoreOptions options) {
  if (options.dir.empty()) {
    return InvalidArgumentError("a bundle store needs a directory");
  }
  std::error_code error;
  fs::create_directories(options.dir, error);
  if (error) {
    return FailedPreconditionError("cannot create " + options.dir + ": " +
                                   error.message());
  }
  ::chmod(options.dir.c_str(), 0700);
  if (::access(options.dir.c_str(), W_OK) != 0) {
    return FailedPreconditionError("cannot write to " + options.dir);
  }
  for (const auto& entry : fs::directory_iterator(options.dir, error)) {
    if (entry.path().extension() == ".tmp") fs::remove(entry.path(), error);
  }
  return std::unique_ptr<BundleStore>(new BundleStore(std::move(options)));
}

std::string BundleStore::PathOf(const std::string& digest) const {
  return options_.dir + "/" + digest;
}

std::string BundleStore::PartPath(const std::string& digest) const {
  return options_.dir + "/" + digest + ".part";
}

StatusOr<BundleStore::Progress> BundleStore::Stat(
    const std::string& digest) const {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  Progress progress;
  struct stat info {};
  if (::stat(PathOf(digest).c_str(), &info) == 0) {
    progress.have = progress.total = static_cast<uint64_t>(info.st_size);
    progress.complete = true;
    return progress;
  }
  auto upload = uploads_.find(digest);
  if (upload != uploads_.end()) {
    progress.have = upload->second.have;
    progress.total = upload->second.total;
    return progress;
  }
  // A partial upload from an earlier run of this process.
  auto total = ReadFileToString(PartPath(digest) + ".total", 64);
  if (total.ok() && ::stat(PartPath(digest).c_str(), &info) == 0) {
    progress.total = std::strtoull(total->c_str(), nullptr, 10);
    progress.have = std::min<uint64_t>(static_cast<uint64_t>(info.st_size),
                                       progress.total);
  }
  return progress;
}

StatusOr<BundleStore::Upload*> BundleStore::UploadFor(const std::string& digest,
                                                      uint64_t total) {
  auto found = uploads_.find(digest);
  if (found != uploads_.end()) return &found->second;
  Upload upload;
  upload.total = total;
  upload.hash.reset(EVP_MD_CTX_new());
  EVP_DigestInit_ex(upload.hash.get(), EVP_sha256(), nullptr);
  const std::string part = PartPath(digest);
  auto stored_total = ReadFileToString(part + ".total", 64);
  if (stored_total.ok()) {
    upload.total = std::strtoull(stored_total->c_str(), nullptr, 10);
    // Rehash what an earlier run received (once per restart).
    const int fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      std::string buffer(1 << 16, '\0');
      while (upload.have < upload.total) {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        const uint64_t take = std::min<uint64_t>(static_cast<uint64_t>(got),
                                                 upload.total - upload.have);
        EVP_DigestUpdate(upload.hash.get(), buffer.data(), take);
        upload.have += take;
      }
      ::close(fd);
      if (::truncate(part.c_str(), static_cast<off_t>(upload.have)) != 0) {
        return InternalError("cannot truncate " + part);
      }
    }
  } else {
    CN_RETURN_IF_ERROR(
        WriteFileAtomically(part + ".total", std::to_string(total), 0600));
    const int fd = ::open(part.c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return InternalError("cannot create " + part + ": " +
                           std::strerror(errno));
    }
    ::close(fd);
  }
  return &uploads_.emplace(digest, std::move(upload)).first->second;
}

StatusOr<BundleStore::Progress> BundleStore::Append(const std::string& digest,
                                                    uint64_t total,
                                                    uint64_t offset,
                                                    std::string_view data) {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  if (total > options_.max_bundle_bytes) {
    return ResourceExhaustedError(
        "a bundle of " + std::to_string(total) + " bytes is over this " +
        "store's limit of " + std::to_string(options_.max_bundle_bytes));
  }
  if (data.size() > kChunkBytes) {
    return InvalidArgumentError("a chunk holds at most " +
                                std::to_string(kChunkBytes) + " bytes");
  }
  if (offset > total || data.size() > total - offset) {
    return InvalidArgumentError("chunk at " + std::to_string(offset) + "+" +
                                std::to_string(data.size()) +
                                " is past the bundle's " +
                                std::to_string(total) + " bytes");
  }
  CN_ASSIGN_OR_RETURN(Progress progress, Stat(digest));
  if (progress.complete) {
    if (progress.total != total) {
      return InvalidArgumentError("bundle " + digest + " has " +
                                  std::to_string(progress.total) +
                                  " bytes, not " + std::to_string(total));
    }
    return progress;
  }
  CN_ASSIGN_OR_RETURN(Upload * upload, UploadFor(digest, total));
  if (upload->total != total) {
    return InvalidArgumentError("the upload of " + digest + " began with " +
                                std::to_string(upload->total) +
                                " bytes in all, not " + std::to_string(total));
  }
  if (offset > upload->have) {
    return OutOfRangeError("chunk at " + std::to_string(offset) +
                           " but only " + std::to_string(upload->have) +
                           " bytes are here: send from there");
  }
  // The part of the chunk that is new (a resent chunk overlaps).
  const uint64_t skip = upload->have - offset;
  if (skip < data.size()) {
    const std::string_view fresh = data.substr(skip);
    const std::string part = PartPath(digest);
    const int fd = ::open(part.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return InternalError("cannot open " + part);
    size_t done = 0;
    while (done < fresh.size()) {
      const ssize_t put =
          ::write(fd, fresh.data() + done, fresh.size() - done);
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) {
        const int saved = errno;
        ::close(fd);
        // Whatever part of it landed is cut off again on the next start.
        uploads_.erase(digest);
        return InternalError("cannot write " + part + ": " +
                             std::strerror(saved));
      }
      done += static_cast<size_t>(put);
    }
    if (upload->have + fresh.size() == upload->total) ::fsync(fd);
    ::close(fd);
    EVP_DigestUpdate(upload->hash.get(), fresh.data(), fresh.size());
    upload->have += fresh.size();
  }
  progress.have = upload->have;
  progress.total = upload->total;
  if (upload->have < upload->total) return progress;

  const std::string got = FinalHex(upload->hash.get());
  uploads_.erase(digest);
  const std::string part = PartPath(digest);
  if (got != digest) {
    ::unlink(part.c_str());
    ::unlink((part + ".total").c_str());
    return DataLossError("the bundle's bytes hash to " + got + ", not to " +
                         digest + "; it was discarded");
  }
  if (::rename(part.c_str(), PathOf(digest).c_str()) != 0) {
    return InternalError("cannot finish " + digest + ": " +
                         std::strerror(errno));
  }
  ::unlink((part + ".total").c_str());
  (void)SyncDirectory(options_.dir);
  progress.complete = true;
  return progress;
}

StatusOr<std::string> BundleStore::Read(const std::string& digest,
                                        uint64_t offset,
                                        uint64_t max_bytes) const {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  const std::string path = PathOf(digest);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFoundError("bundle " + digest + " is not here");
  struct stat info {};
  ::fstat(fd, &info);
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (offset > size) {
    ::close(fd);
    return OutOfRangeError("offset " + std::to_string(offset) +
                           " is past the bundle's " + std::to_string(size) +
                           " bytes");
  }
  std::string data(std::min({max_bytes, kChunkBytes, size - offset}), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t got = ::pread(fd, data.data() + done, data.size() - done,
                                static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  data.resize(done);
  return data;
}

Status BundleStore::Adopt(const std::string& file, const std::string& digest) {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  CN_ASSIGN_OR_RETURN(const std::string got, FileDigest(file));
  if (got != digest) {
    return DataLossError(file + " hashes to " + got + ", not to " + digest);
  }
  struct stat info {};
  if (::stat(PathOf(digest).c_str(), &info) == 0) {
    ::unlink(file.c_str());
    return OkStatus();
  }
  if (::rename(file.c_str(), PathOf(digest).c_str()) != 0) {
    return InternalError("cannot move " + file + " into the store: " +
                         std::strerror(errno));
  }
  return SyncDirectory(options_.dir);
}

Status BundleStore::AdoptFrom(BundleStore& other, const std::string& digest) {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  const std::string source = other.PathOf(digest);
  struct stat info {};
  if (::stat(source.c_str(), &info) != 0) {
    return NotFoundError("bundle " + digest + " is not complete there");
  }
  if (::stat(PathOf(digest).c_str(), &info) == 0) {
    ::unlink(source.c_str());
    return OkStatus();
  }
  if (::rename(source.c_str(), PathOf(digest).c_str()) != 0) {
    return InternalError("cannot move bundle " + digest + ": " +
                         std::strerror(errno));
  }
  return SyncDirectory(options_.dir);
}

Status BundleStore::Remove(const std::string& digest) {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  uploads_.erase(digest);
  ::unlink(PathOf(digest).c_str());
  ::unlink(PartPath(digest).c_str());
  ::unlink((PartPath(digest) + ".total").c_str());
  return OkStatus();
}

Status BundleStore::AddNote(const std::string& digest,
                            const std::string& line) {
  CN_RETURN_IF_ERROR(CheckDigest(digest));
  if (line.empty() || line.size() > 512 ||
      std::any_of(line.begin(), line.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      })) {
    return InvalidArgumentError("a bundle note is one line of text");
  }
  if (HasNote(digest, line)) return OkStatus();
  const std::string path = options_.dir + "/" + digest + ".notes";
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError("cannot write " + path);
  const std::string text = line + "\n";
  const bool written =
      ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::fsync(fd);
  ::close(fd);
  return written ? OkStatus() : InternalError("cannot write " + path);
}

std::vector<std::string> BundleStore::Notes(const std::string& digest) const {
  std::vector<std::string> lines;
  if (!IsDigest(digest)) return lines;
  auto text = ReadFileToString(options_.dir + "/" + digest + ".notes", 1 << 20);
  if (!text.ok()) return lines;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    if (end > start) lines.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool BundleStore::HasNote(const std::string& digest,
                          const std::string& line) const {
  const auto lines = Notes(digest);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

uint64_t BundleStore::BytesWithNote(const std::string& line) const {
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(options_.dir, error)) {
    if (entry.path().extension() != ".notes") continue;
    const std::string digest = entry.path().stem().string();
    if (!HasNote(digest, line)) continue;
    struct stat info {};
    if (::stat(PathOf(digest).c_str(), &info) == 0) {
      bytes += static_cast<uint64_t>(info.st_size);
    }
  }
  return bytes;
}

void BundleStore::Touch(const std::string& digest) {
  if (!IsDigest(digest)) return;
  ::utimensat(AT_FDCWD, PathOf(digest).c_str(), nullptr, 0);
}

std::vector<std::string> BundleStore::RemoveUnusedSince(int64_t cutoff_ms) {
  std::vector<std::string> removed;
  std::error_code error;
  std::vector<fs::path> old;
  for (const auto& entry : fs::directory_iterator(options_.dir, error)) {
    struct stat info {};
    if (::stat(entry.path().c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
      continue;
    }
    const int64_t written_ms = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000 +
                               info.st_mtim.tv_nsec / 1'000'000;
    if (written_ms < cutoff_ms) old.push_back(entry.path());
  }
  for (const auto& path : old) {
    const std::string name = path.filename().string();
    const std::string digest = name.substr(0, name.find('.'));
    if (!IsDigest(digest)) continue;
    if (name == digest) {
      // A bundle: its notes go with it.
      ::unlink((options_.dir + "/" + digest + ".notes").c_str());
      removed.push_back(digest);
    } else if (name.size() > digest.size() &&
               name.compare(digest.size(), std::string::npos, ".notes") == 0 &&
               fs::exists(PathOf(digest), error)) {
      continue;  // a bundle still in use keeps its notes, whatever their age
    } else {
      uploads_.erase(digest);
    }
    ::unlink(path.c_str());
  }
  return removed;
}

uint64_t BundleStore::BytesStored() const {
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(options_.dir, error)) {
    if (entry.is_regular_file(error)) bytes += entry.file_size(error);
  }
  return bytes;
}

}  // namespace computenet::bundles
