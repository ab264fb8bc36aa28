#include "computenet/provider/agent_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "computenet/common/secrets.h"
#include "computenet/common/sha256.h"
#include "computenet/storage/database.h"

namespace computenet::provider {
namespace {

constexpr char kOwner[] = "agent";
constexpr const char* kAgentV1[] = {
    "CREATE TABLE agent_outbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  type INTEGER NOT NULL,"
    "  job_id TEXT NOT NULL,"
    "  body BLOB NOT NULL)",
    "CREATE TABLE agent_jobs ("
    "  job_id TEXT PRIMARY KEY,"
    "  offer BLOB NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  started INTEGER NOT NULL,"
    "  last_end_ms INTEGER NOT NULL,"
    "  next_index INTEGER NOT NULL)",
};
constexpr storage::Migration kAgentMigrations[] = {{1, kAgentV1}};

std::string RandomInstanceId() {
  std::random_device device;  // /dev/urandom on Linux
  std::string bytes(16, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(device() & 0xff);
  return HexEncode(bytes);
}

// The exclusive lock on <dir>/agent.lock; -1 and an error if another agent
// holds it.
StatusOr<int> LockDirectory(const std::string& dir) {
  const std::string path = dir + "/agent.lock";
  // Close-on-exec: a job started by this agent must not keep the lock alive
  // after the agent died (the restart would be refused).
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return UnavailableError("open " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char buffer[32] = {};
    const ssize_t got = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
    ::close(fd);
    if (error != EWOULDBLOCK) {
      return UnavailableError("lock " + path + ": " + std::strerror(error));
    }
    std::string holder = got > 0 ? std::string(buffer, static_cast<size_t>(got))
                                 : std::string("unknown");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) {
      holder.pop_back();
    }
    return FailedPreconditionError(
        "state directory " + dir + " is in use by another agent (pid " +
        holder + "); one agent per site state directory");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) !=
                                     static_cast<ssize_t>(pid.size())) {
    // The pid is only for the refusal message; the lock itself is taken.
  }
  return fd;
}

}  // namespace

AgentState::AgentState(std::unique_ptr<storage::Database> database, int lock_fd)
    : database_(std::move(database)), lock_fd_(lock_fd) {}

AgentState::~AgentState() {
  database_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

StatusOr<std::unique_ptr<AgentState>> AgentState::Open(
    const std::string& state_dir) {
  int lock_fd = -1;
  std::string path = ":memory:";
  storage::DatabaseOptions options;
  if (state_dir.empty()) {
    options.durability = storage::Durability::kOff;
  } else {
    std::error_code error;
    std::filesystem::create_directories(state_dir, error);
    if (error) {
      return UnavailableError("cannot create state directory " + state_dir +
                              ": " + error.message());
    }
    CN_ASSIGN_OR_RETURN(lock_fd, LockDirectory(state_dir));
    path = state_dir + "/agent.db";
  }
  auto database = storage::Database::Open(path, options);
  if (!database.ok()) {
    if (lock_fd >= 0) ::close(lock_fd);
    return database.status();
  }
  std::unique_ptr<AgentState> state(
      new AgentState(std::move(*database), lock_fd));
  CN_RETURN_IF_ERROR(state->database_->Migrate(kOwner, kAgentMigrations));
  if (state->durable()) {
    CN_ASSIGN_OR_RETURN(auto instance,
                        state->database_->GetMeta("agent_instance"));
    if (instance.has_value()) {
      state->instance_id_ = *instance;
    } else {
      state->instance_id_ = RandomInstanceId();
      CN_RETURN_IF_ERROR(
          state->database_->SetMeta("agent_instance", state->instance_id_));
    }
  }
  return state;
}

StatusOr<std::vector<StoredReport>> AgentState::Reports() {
  std::vector<StoredReport> out;
  CN_RETURN_IF_ERROR(database_->Run([&]() -> Status {
    auto query = database_->Prepare(
        "SELECT id, type, job_id, body FROM agent_outbox ORDER BY id");
    while (query->executeStep()) {
      StoredReport report;
      report.id = query->getColumn(0).getInt64();
      report.type = static_cast<v1::MessageType>(query->getColumn(1).getInt());
      report.job_id = query->getColumn(2).getString();
      report.body = storage::BlobOf(query->getColumn(3));
      out.push_back(std::move(report));
    }
    return OkStatus();
  }));
  return out;
}

StatusOr<std::vector<StoredJob>> AgentState::Jobs() {
  std::vector<StoredJob> out;
  CN_RETURN_IF_ERROR(database_->Run([&]() -> Status {
    auto query = database_->Prepare(
        "SELECT job_id, offer, phase, started, last_end_ms, next_index "
        "FROM agent_jobs ORDER BY job_id");
    while (query->executeStep()) {
      StoredJob job;
      job.job_id = query->getColumn(0).getString();
      if (!job.offer.ParseFromString(storage::BlobOf(query->getColumn(1)))) {
        return DataLossError("agent state: offer of job " + job.job_id +
                             " does not parse");
      }
      const int phase = query->getColumn(2).getInt();
      if (phase < static_cast<int>(JobPhase::kAccepted) ||
          phase > static_cast<int>(JobPhase::kRunning)) {
        return DataLossError("agent state: job " + job.job_id +
                             " has unknown phase " + std::to_string(phase));
      }
      job.phase = static_cast<JobPhase>(phase);
      job.started = query->getColumn(3).getInt() != 0;
      job.last_end_ms = query->getColumn(4).getInt64();
      job.next_index = static_cast<uint32_t>(query->getColumn(5).getInt64());
      out.push_back(std::move(job));
    }
    return OkStatus();
  }));
  return out;
}

Status AgentState::Transaction(const std::function<Status()>& fn) {
  return database_->RunInTransaction(fn);
}

StatusOr<int64_t> AgentState::AddReport(v1::MessageType type,
                                        const std::string& job_id,
                                        const std::string& body) {
  int64_t id = 0;
  CN_RETURN_IF_ERROR(database_->RunInTransaction([&]() -> Status {
    auto insert = database_->Prepare(
        "INSERT INTO agent_outbox(type, job_id, body) VALUES(?, ?, ?)");
    insert->bind(1, static_cast<int>(type));
    insert->bind(2, job_id);
    storage::BindBlob(*insert, 3, body);
    insert->exec();
    id = database_->last_insert_rowid();
    return OkStatus();
  }));
  return id;
}

Status AgentState::RemoveReport(int64_t id) {
  return database_->RunInTransaction([&]() -> Status {
    auto remove = database_->Prepare("DELETE FROM agent_outbox WHERE id = ?");
    remove->bind(1, id);
    remove->exec();
    return OkStatus();
  });
}

Status AgentState::PutJob(const StoredJob& job) {
  return database_->RunInTransaction([&]() -> Status {
    auto put = database_->Prepare(
        "INSERT OR REPLACE INTO agent_jobs(job_id, offer, phase, started, "
        "last_end_ms, next_index) VALUES(?, ?, ?, ?, ?, ?)");
    put->bind(1, job.job_id);
    // Secret env values live in the agent's memory only: the stored offer
    // keeps their names (StartJob refuses a masked one after a restart).
    if (job.offer.spec().secret_env().empty()) {
      storage::BindBlob(*put, 2, job.offer.SerializeAsString());
    } else {
      v1::PlacementOffer masked = job.offer;
      MaskSecretEnv(masked.mutable_spec());
      storage::BindBlob(*put, 2, masked.SerializeAsString());
    }
    put->bind(3, static_cast<int>(job.phase));
    put->bind(4, job.started ? 1 : 0);
    put->bind(5, static_cast<int64_t>(job.last_end_ms));
    put->bind(6, static_cast<int64_t>(job.next_index));
    put->exec();
    return OkStatus();
  });
}

Status AgentState::RemoveJob(const std::string& job_id) {
  return database_->RunInTransaction([&]() -> Status {
    auto remove = database_->Prepare("DELETE FROM agent_jobs WHERE job_id = ?");
    remove->bind(1, job_id);
    remove->exec();
    return OkStatus();
  });
}

}  // namespace computenet::provider
