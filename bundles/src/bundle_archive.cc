#include "computenet/bundles/bundle_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>

#include "computenet/common/sha256.h"

namespace computenet::bundles {
namespace {

namespace fs = std::filesystem;

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

std::string ArchiveError(archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown archive error";
}

// One file or directory to put in the archive: its name there and the
// host path it comes from.
struct Member {
  std::string name;
  fs::path source;
  bool directory = false;
};

Status Collect(const fs::path& source, const std::string& name,
               const ArchiveLimits& limits, std::vector<Member>* members) {
  std::error_code error;
  const fs::file_status status = fs::status(source, error);  // follows links
  if (error) {
    return InvalidArgumentError("cannot read " + source.string() + ": " +
                                error.message());
  }
  if (members->size() >= limits.max_entries) {
    return ResourceExhaustedError("more than " +
                                  std::to_string(limits.max_entries) +
                                  " files and directories");
  }
  if (fs::is_regular_file(status)) {
    members->push_back({name, source, false});
    return OkStatus();
  }
  if (!fs::is_directory(status)) {
    return InvalidArgumentError(source.string() +
                                " is not a regular file or a directory");
  }
  if (fs::is_symlink(fs::symlink_status(source, error))) {
    // A linked directory could loop or pull in half the host.
    return InvalidArgumentError(source.string() +
                                " is a symbolic link to a directory");
  }
  if (!name.empty()) members->push_back({name, source, true});
  std::vector<fs::path> children;
  for (const auto& entry : fs::directory_iterator(source, error)) {
    children.push_back(entry.path());
  }
  if (error) {
    return InvalidArgumentError("cannot list " + source.string() + ": " +
                                error.message());
  }
  std::sort(children.begin(), children.end());
  for (const auto& child : children) {
    const std::string child_name =
        name.empty() ? child.filename().string()
                     : name + "/" + child.filename().string();
    CN_RETURN_IF_ERROR(Collect(child, child_name, limits, members));
  }
  return OkStatus();
}

Status WriteMembers(std::vector<Member> members, const std::string& out_file,
                    const ArchiveLimits& limits) {
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.name < b.name; });
  for (size_t i = 1; i < members.size(); ++i) {
    if (members[i].name == members[i - 1].name) {
      return InvalidArgumentError("two inputs are named '" + members[i].name +
                                  "' in the bundle");
    }
  }
  ArchivePtr writer(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(writer.get());
  // The default pads the last block to 10 KiB; keep it, it is deterministic.
  if (archive_write_open_filename(writer.get(), out_file.c_str()) !=
      ARCHIVE_OK) {
    return InternalError("cannot write " + out_file + ": " +
                         ArchiveError(writer.get()));
  }
  uint64_t written = 0;
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(
      archive_entry_new(), archive_entry_free);
  std::string buffer(1 << 16, '\0');
  for (const Member& member : members) {
    archive_entry_clear(entry.get());
    archive_entry_set_pathname(entry.get(), member.name.c_str());
    // Nothing of the packing machine goes in: times, owners and all mode
    // bits but "executable" are fixed, so the digest depends on content.
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    std::error_code error;
    if (member.directory) {
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
      archive_entry_set_perm(entry.get(), 0755);
      archive_entry_set_size(entry.get(), 0);
    } else {
      const uintmax_t size = fs::file_size(member.source, error);
      if (error) {
        return InvalidArgumentError("cannot read " + member.source.string() +
                                    ": " + error.message());
      }
      written += size;
      if (written > limits.max_bytes) {
        return ResourceExhaustedError(
            "the inputs hold more than " + std::to_string(limits.max_bytes) +
            " bytes");
      }
      const auto perms = fs::status(member.source, error).permissions();
      const bool executable =
          (perms & fs::perms::owner_exec) != fs::perms::none;
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_perm(entry.get(), executable ? 0755 : 0644);
      archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    }
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK) {
      return InvalidArgumentError("cannot pack '" + member.name +
                                  "': " + ArchiveError(writer.get()));
    }
    if (member.directory) continue;
    const int fd = ::open(member.source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return InvalidArgumentError("cannot open " + member.source.string() +
                                  ": " + std::strerror(errno));
    }
    uint64_t copied = 0;
    const uint64_t expected = static_cast<uint64_t>(
        archive_entry_size(entry.get()));
    while (copied < expected) {
      const ssize_t got = ::read(fd, buffer.data(), buffer.size());
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      const uint64_t take =
          std::min<uint64_t>(static_cast<uint64_t>(got), expected - copied);
      if (archive_write_data(writer.get(), buffer.data(), take) < 0) {
        ::close(fd);
        return InternalError("cannot write " + out_file + ": " +
                             ArchiveError(writer.get()));
      }
      copied += take;
    }
    ::close(fd);
    if (copied != expected) {
      return InvalidArgumentError(member.source.string() +
                                  " changed while it was packed");
    }
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    return InternalError("cannot finish " + out_file + ": " +
                         ArchiveError(writer.get()));
  }
  return OkStatus();
}

StatusOr<PackedBundle> Finish(Status written, const std::string& out_file,
                              const ArchiveLimits& limits) {
  if (!written.ok()) {
    ::unlink(out_file.c_str());
    return written;
  }
  std::error_code error;
  const uintmax_t size = fs::file_size(out_file, error);
  if (error) return InternalError("cannot stat " + out_file);
  if (size > limits.max_bytes) {
    ::unlink(out_file.c_str());
    return ResourceExhaustedError("the bundle would be " +
                                  std::to_string(size) + " bytes, over " +
                                  std::to_string(limits.max_bytes));
  }
  CN_ASSIGN_OR_RETURN(std::string digest, FileDigest(out_file));
  return PackedBundle{out_file, std::move(digest), size};
}

// A name from a stranger's archive, checked before anything is written.
Status CheckEntryName(const std::string& name) {
  if (name.empty()) return InvalidArgumentError("an entry has no name");
  if (name.front() == '/') {
    return InvalidArgumentError("entry '" + name + "' is an absolute path");
  }
  if (name.find('\0') != std::string::npos) {
    return InvalidArgumentError("an entry name holds a NUL byte");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0) {
      return InvalidArgumentError("entry '" + name + "' leaves its directory");
    }
    start = end + 1;
  }
  return OkStatus();
}

}  // namespace

bool IsDigest(const std::string& text) { return IsSha256Hex(text); }

StatusOr<std::string> FileDigest(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError(path + " does not exist");
    return InternalError("cannot open " + path + ": " + std::strerror(errno));
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> hash(EVP_MD_CTX_new(),
                                                          EVP_MD_CTX_free);
  EVP_DigestInit_ex(hash.get(), EVP_sha256(), nullptr);
  std::string buffer(1 << 16, '\0');
  while (true) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      return InternalError("cannot read " + path + ": " + std::strerror(errno));
    }
    if (got == 0) break;
    EVP_DigestUpdate(hash.get(), buffer.data(), static_cast<size_t>(got));
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(hash.get(), digest, &length);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), length));
}

StatusOr<PackedBundle> PackPaths(const std::vector<std::string>& paths,
                                 const std::string& out_file,
                                 const ArchiveLimits& limits) {
  if (paths.empty()) return InvalidArgumentError("no inputs to pack");
  std::vector<Member> members;
  for (const auto& path : paths) {
    fs::path source(path);
    while (source.has_relative_path() && source.filename().empty()) {
      source = source.parent_path();  // "data/" -> "data"
    }
    std::string name = source.filename().string();
    if (name.empty() || name == "." || name == "..") {
      std::error_code error;
      name = fs::weakly_canonical(source, error).filename().string();
    }
    if (name.empty()) {
      return InvalidArgumentError("cannot name input '" + path + "'");
    }
    Status collected = Collect(source, name, limits, &members);
    if (!collected.ok()) return collected;
  }
  return Finish(WriteMembers(std::move(members), out_file, limits), out_file,
                limits);
}

StatusOr<PackedBundle> PackDirectoryContents(const std::string& dir,
                                             const std::string& out_file,
                                             const ArchiveLimits& limits) {
  std::vector<Member> members;
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return InvalidArgumentError(dir + " is not a directory");
  }
  CN_RETURN_IF_ERROR(Collect(dir, "", limits, &members));
  return Finish(WriteMembers(std::move(members), out_file, limits), out_file,
                limits);
}

Status Unpack(const std::string& archive_file, const std::string& dest_dir,
              const ArchiveLimits& limits) {
  std::error_code error;
  fs::create_directories(dest_dir, error);
  if (error) {
    return FailedPreconditionError("cannot create " + dest_dir + ": " +
                                   error.message());
  }
  ArchivePtr reader(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(reader.get());
  if (archive_read_open_filename(reader.get(), archive_file.c_str(), 1 << 16) !=
      ARCHIVE_OK) {
    return DataLossError("cannot read " + archive_file + ": " +
                         ArchiveError(reader.get()));
  }
  uint64_t entries = 0;
  uint64_t bytes = 0;
  std::string buffer(1 << 16, '\0');
  archive_entry* entry = nullptr;
  while (true) {
    const int next = archive_read_next_header(reader.get(), &entry);
    if (next == ARCHIVE_EOF) break;
    if (next != ARCHIVE_OK) {
      return DataLossError("bad archive " + archive_file + ": " +
                           ArchiveError(reader.get()));
    }
    if (++entries > limits.max_entries) {
      return ResourceExhaustedError("the archive holds more than " +
                                    std::to_string(limits.max_entries) +
                                    " entries");
    }
    const char* raw_name = archive_entry_pathname(entry);
    std::string name = raw_name != nullptr ? raw_name : "";
    while (!name.empty() && name.back() == '/') name.pop_back();
    CN_RETURN_IF_ERROR(CheckEntryName(name));
    const fs::path target = fs::path(dest_dir) / name;
    const mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) {
      fs::create_directories(target, error);
      if (error) {
        return FailedPreconditionError("cannot create " + target.string() +
                                       ": " + error.message());
      }
      continue;
    }
    if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
      return InvalidArgumentError("entry '" + name +
                                  "' is not a regular file or a directory");
    }
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0) return DataLossError("entry '" + name + "' has no size");
    bytes += static_cast<uint64_t>(size);
    if (bytes > limits.max_bytes) {
      return ResourceExhaustedError("the archive unpacks to more than " +
                                    std::to_string(limits.max_bytes) +
                                    " bytes");
    }
    fs::create_directories(target.parent_path(), error);
    // O_NOFOLLOW | O_EXCL: never through a link, never over a file.
    const mode_t mode = (archive_entry_perm(entry) & 0100) != 0 ? 0755 : 0644;
    const int fd = ::open(target.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          mode);
    if (fd < 0) {
      if (errno == EEXIST) {
        return AlreadyExistsError("entry '" + name + "' is there already");
      }
      return FailedPreconditionError("cannot create " + target.string() +
                                     ": " + std::strerror(errno));
    }
    while (true) {
      const la_ssize_t got =
          archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (got == 0) break;
      if (got < 0) {
        ::close(fd);
        return DataLossError("entry '" + name + "' is cut short: " +
                             ArchiveError(reader.get()));
      }
      size_t done = 0;
      while (done < static_cast<size_t>(got)) {
        const ssize_t put = ::write(fd, buffer.data() + done,
                                    static_cast<size_t>(got) - done);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) {
          const int saved = errno;
          ::close(fd);
          return InternalError("cannot write " + target.string() + ": " +
                               std::strerror(saved));
        }
        done += static_cast<size_t>(put);
      }
    }
    ::close(fd);
  }
  return OkStatus();
}

}  // namespace computenet::bundles
