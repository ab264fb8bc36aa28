#include "computenet/provider/slurm_parse.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>

namespace computenet::provider {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// Splits on sep into at most max_fields fields; the last takes the rest.
std::vector<std::string_view> Split(std::string_view text, char sep,
                                    size_t max_fields = SIZE_MAX) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    if (out.size() + 1 == max_fields) {
      out.push_back(text.substr(start));
      break;
    }
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool AllDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
}

template <typename T>
std::optional<T> ToInt(std::string_view text) {
  text = Trim(text);
  T value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

// "123" or an array task "123_4".
bool IsJobId(std::string_view text) {
  auto parts = Split(text, '_');
  if (parts.size() > 2) return false;
  for (auto part : parts) {
    if (!AllDigits(part)) return false;
  }
  return true;
}

bool IsKey(std::string_view key) {
  if (key.empty() || !std::isalpha(static_cast<unsigned char>(key[0]))) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == ':' || c == '/' || c == '.' || c == '-';
  });
}

bool ContainsNoCase(std::string_view haystack, std::string_view needle) {
  return Lower(haystack).find(Lower(needle)) != std::string::npos;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.' || c == '_' || c == '-') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int high = hex(text[i + 1]);
    int low = hex(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

constexpr std::string_view kTagPrefix = "computenet/v1;";

}  // namespace

StatusOr<SlurmJobRef> ParseSbatchParsable(std::string_view text) {
  // The id is the last non-empty line (site wrappers may print more).
  std::string_view last;
  for (auto line : SplitLines(text)) {
    if (!Trim(line).empty()) last = Trim(line);
  }
  if (last.empty()) {
    return InvalidArgumentError("sbatch printed no job id");
  }
  auto parts = Split(last, ';', 2);
  SlurmJobRef ref;
  ref.job_id = std::string(Trim(parts[0]));
  if (parts.size() > 1) ref.cluster = std::string(Trim(parts[1]));
  if (!IsJobId(ref.job_id)) {
    return InvalidArgumentError("sbatch printed '" +
                                std::string(last.substr(0, 128)) +
                                "', not a job id");
  }
  return ref;
}

std::string SlurmRecord::Get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return std::string();
}

bool SlurmRecord::Has(std::string_view key) const {
  return std::any_of(fields.begin(), fields.end(),
                     [&](const auto& field) { return field.first == key; });
}

std::vector<std::string> SlurmRecord::GetAll(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fields) {
    if (k == key) out.push_back(v);
  }
  return out;
}

std::vector<SlurmRecord> ParseScontrolRecords(std::string_view text) {
  std::vector<SlurmRecord> records;
  SlurmRecord current;
  auto flush = [&] {
    if (!current.fields.empty()) records.push_back(std::move(current));
    current = SlurmRecord();
  };
  for (auto line : SplitLines(text)) {
    if (Trim(line).empty()) {
      flush();
      continue;
    }
    size_t pos = 0;
    while (pos < line.size()) {
      while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos]))) ++pos;
      if (pos >= line.size()) break;
      size_t end = pos;
      while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
      std::string_view token = line.substr(pos, end - pos);
      pos = end;
      size_t eq = token.find('=');
      if (eq != std::string_view::npos && IsKey(token.substr(0, eq))) {
        std::string key(token.substr(0, eq));
        // The record's first key again (one-line output): a new record.
        if (!current.fields.empty() && key == current.fields.front().first) {
          flush();
        }
        current.fields.emplace_back(std::move(key),
                                    std::string(token.substr(eq + 1)));
      } else if (!current.fields.empty()) {
        auto& value = current.fields.back().second;
        if (!value.empty()) value += ' ';
        value += token;
      }
      // A stray token before any key (an error banner) is ignored.
    }
  }
  flush();
  return records;
}

std::optional<int64_t> ParseSlurmTime(std::string_view text) {
  text = Trim(text);
  if (AllDigits(text)) {
    auto value = ToInt<int64_t>(text);
    if (!value || *value <= 0) return std::nullopt;
    return value;
  }
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
      text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  auto year = ToInt<int>(text.substr(0, 4));
  auto month = ToInt<int>(text.substr(5, 2));
  auto day = ToInt<int>(text.substr(8, 2));
  auto hour = ToInt<int>(text.substr(11, 2));
  auto minute = ToInt<int>(text.substr(14, 2));
  auto second = ToInt<int>(text.substr(17, 2));
  if (!year || !month || !day || !hour || !minute || !second || *month < 1 ||
      *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  tm.tm_isdst = -1;  // Slurm prints local time; let the C library decide DST
  std::time_t value = std::mktime(&tm);
  if (value == static_cast<std::time_t>(-1) || value <= 0) return std::nullopt;
  return static_cast<int64_t>(value);
}

std::optional<int32_t> ParseSlurmExitCode(std::string_view text) {
  text = Trim(text);
  auto parts = Split(text, ':');
  if (parts.size() > 2) return std::nullopt;
  auto status = ToInt<int32_t>(parts[0]);
  if (!status) return std::nullopt;
  if (parts.size() == 2) {
    auto signal = ToInt<int32_t>(parts[1]);
    if (!signal) return std::nullopt;
    if (*signal != 0) return 128 + *signal;
  }
  return status;
}

SlurmState ParseSlurmState(std::string_view text) {
  text = Trim(text);
  // "CANCELLED by 0" -> "CANCELLED"; sacct truncates to "CANCELLED+".
  size_t space = text.find_first_of(" \t");
  if (space != std::string_view::npos) text = text.substr(0, space);
  while (!text.empty() && text.back() == '+') text.remove_suffix(1);
  static const std::map<std::string, SlurmState, std::less<>> kStates = {
      {"PENDING", SlurmState::kPending},        {"PD", SlurmState::kPending},
      {"REQUEUED", SlurmState::kPending},       {"RQ", SlurmState::kPending},
      {"REQUEUE_HOLD", SlurmState::kPending},   {"RH", SlurmState::kPending},
      {"REQUEUE_FED", SlurmState::kPending},    {"RF", SlurmState::kPending},
      {"RESV_DEL_HOLD", SlurmState::kPending},  {"RD", SlurmState::kPending},
      {"SPECIAL_EXIT", SlurmState::kPending},   {"SE", SlurmState::kPending},
      {"RUNNING", SlurmState::kRunning},        {"R", SlurmState::kRunning},
      {"CONFIGURING", SlurmState::kRunning},    {"CF", SlurmState::kRunning},
      {"COMPLETING", SlurmState::kRunning},     {"CG", SlurmState::kRunning},
      {"SUSPENDED", SlurmState::kRunning},      {"S", SlurmState::kRunning},
      {"STOPPED", SlurmState::kRunning},        {"ST", SlurmState::kRunning},
      {"SIGNALING", SlurmState::kRunning},      {"SI", SlurmState::kRunning},
      {"STAGE_OUT", SlurmState::kRunning},      {"SO", SlurmState::kRunning},
      {"RESIZING", SlurmState::kRunning},       {"RS", SlurmState::kRunning},
      {"COMPLETED", SlurmState::kCompleted},    {"CD", SlurmState::kCompleted},
      {"FAILED", SlurmState::kFailed},          {"F", SlurmState::kFailed},
      {"TIMEOUT", SlurmState::kTimeout},        {"TO", SlurmState::kTimeout},
      {"CANCELLED", SlurmState::kCancelled},    {"CA", SlurmState::kCancelled},
      {"NODE_FAIL", SlurmState::kNodeFail},     {"NF", SlurmState::kNodeFail},
      {"PREEMPTED", SlurmState::kPreempted},    {"PR", SlurmState::kPreempted},
      {"OUT_OF_MEMORY", SlurmState::kOutOfMemory},
      {"OOM", SlurmState::kOutOfMemory},
      {"BOOT_FAIL", SlurmState::kBootFail},     {"BF", SlurmState::kBootFail},
      {"DEADLINE", SlurmState::kDeadline},      {"DL", SlurmState::kDeadline},
  };
  auto it = kStates.find(Upper(text));
  return it == kStates.end() ? SlurmState::kUnknown : it->second;
}

bool IsTerminal(SlurmState state) {
  switch (state) {
    case SlurmState::kPending:
    case SlurmState::kRunning:
    case SlurmState::kUnknown:
      return false;
    default:
      return true;
  }
}

bool HasStarted(SlurmState state) {
  return state == SlurmState::kRunning || IsTerminal(state);
}

SlurmOutcome MapSlurmOutcome(std::string_view state_text,
                             std::string_view reason,
                             std::optional<int32_t> exit_code) {
  SlurmOutcome outcome;
  const SlurmState state = ParseSlurmState(state_text);
  std::string slurm = "Slurm: " + std::string(Trim(state_text));
  std::string_view why = Trim(reason);
  if (!why.empty() && why != "None" && why != "(null)") {
    slurm += ", reason " + std::string(why);
  }
  outcome.exit_code = exit_code.value_or(-1);
  auto fail = [&](const std::string& what) {
    outcome.state = v1::JOB_STATE_FAILED;
    outcome.message = what + " (" + slurm + ")";
  };
  switch (state) {
    case SlurmState::kCompleted:
      if (exit_code.value_or(0) == 0) {
        outcome.state = v1::JOB_STATE_SUCCEEDED;
        outcome.exit_code = 0;
      } else {
        fail("exited with " + std::to_string(*exit_code));
      }
      break;
    case SlurmState::kFailed:
      fail(exit_code ? "exited with " + std::to_string(*exit_code)
                     : std::string("failed"));
      break;
    case SlurmState::kTimeout:
      fail("Slurm's time limit was reached");
      break;
    case SlurmState::kCancelled:
      fail("cancelled in Slurm, not by the consumer");
      break;
    case SlurmState::kNodeFail:
      fail("a node failed");
      break;
    case SlurmState::kPreempted:
      fail("preempted by the site's scheduler");
      break;
    case SlurmState::kOutOfMemory:
      fail("ran out of memory");
      break;
    case SlurmState::kBootFail:
      fail("a node failed to boot");
      break;
    case SlurmState::kDeadline:
      fail("Slurm's deadline was reached");
      break;
    case SlurmState::kPending:
    case SlurmState::kRunning:
    case SlurmState::kUnknown:
      fail("unexpected final state");
      break;
  }
  return outcome;
}

std::vector<SqueueRow> ParseSqueue(std::string_view text) {
  std::vector<SqueueRow> rows;
  for (auto line : SplitLines(text)) {
    std::string_view trimmed = Trim(line);
    if (trimmed.empty() || trimmed.substr(0, 8) == "CLUSTER:") continue;
    auto fields = Split(trimmed, '|', 7);
    if (fields.size() < 7) continue;
    SqueueRow row;
    row.job_id = std::string(Trim(fields[0]));
    row.display_id = std::string(Trim(fields[1]));
    if (!IsJobId(row.job_id)) continue;
    if (row.display_id.empty()) row.display_id = row.job_id;
    row.state = std::string(Trim(fields[2]));
    row.start_s = ParseSlurmTime(fields[3]);
    row.end_s = ParseSlurmTime(fields[4]);
    row.reason = std::string(Trim(fields[5]));
    row.comment = std::string(Trim(fields[6]));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<SacctRow> ParseSacct(std::string_view text) {
  std::vector<SacctRow> rows;
  for (auto line : SplitLines(text)) {
    std::string_view trimmed = Trim(line);
    if (trimmed.empty()) continue;
    auto fields = Split(trimmed, '|');
    if (fields.size() < 7) continue;
    SacctRow row;
    row.job_id = std::string(Trim(fields[0]));
    if (!IsJobId(row.job_id)) continue;  // steps ("5.batch") and junk
    row.name = std::string(Trim(fields[1]));
    row.state = std::string(Trim(fields[2]));
    row.exit_code = ParseSlurmExitCode(fields[3]);
    row.start_s = ParseSlurmTime(fields[4]);
    row.end_s = ParseSlurmTime(fields[5]);
    row.alloc_tres = std::string(Trim(fields[6]));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<GresEntry> ParseGresList(std::string_view text) {
  std::vector<GresEntry> out;
  text = Trim(text);
  if (text.empty() || text == "(null)" || text == "N/A") return out;
  // Split on commas outside parentheses.
  std::vector<std::string_view> items;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || (text[i] == ',' && depth == 0)) {
      items.push_back(text.substr(start, i - start));
      start = i + 1;
    } else if (text[i] == '(') {
      ++depth;
    } else if (text[i] == ')' && depth > 0) {
      --depth;
    }
  }
  for (auto item : items) {
    item = Trim(item);
    size_t paren = item.find('(');
    if (paren != std::string_view::npos) item = item.substr(0, paren);
    if (item.substr(0, 5) == "gres:" || item.substr(0, 5) == "gres/") {
      item.remove_prefix(5);
    }
    if (item.empty()) continue;
    auto parts = Split(item, ':');
    GresEntry entry;
    entry.name = std::string(Trim(parts[0]));
    if (entry.name.empty()) continue;
    if (parts.size() == 1) {
      entry.count = 1;
    } else if (parts.size() == 2) {
      if (auto count = ToInt<uint32_t>(parts[1])) {
        entry.count = *count;
      } else {
        entry.type = std::string(Trim(parts[1]));
        entry.count = 1;
      }
    } else {
      entry.type = std::string(Trim(parts[1]));
      auto count = ToInt<uint32_t>(parts[2]);
      if (!count) continue;
      entry.count = *count;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

uint32_t CountGres(std::string_view list, std::string_view name) {
  auto wanted = Split(name, ':', 2);
  std::string base(Trim(wanted[0]));
  std::string type = wanted.size() > 1 ? Lower(Trim(wanted[1])) : std::string();
  uint32_t total = 0;
  for (const auto& entry : ParseGresList(list)) {
    if (entry.name != base) continue;
    if (!type.empty() && Lower(entry.type) != type) continue;
    total += entry.count;
  }
  return total;
}

uint32_t CountTresGres(std::string_view tres, std::string_view name) {
  const std::string key = "gres/" + std::string(Trim(name));
  for (auto item : Split(Trim(tres), ',')) {
    auto pair = Split(Trim(item), '=', 2);
    if (pair.size() == 2 && Trim(pair[0]) == key) {
      return ToInt<uint32_t>(pair[1]).value_or(0);
    }
  }
  return 0;
}

std::string EncodeJobTag(const JobTag& tag) {
  return std::string(kTagPrefix) + "owner=" + PercentEncode(tag.owner) +
         ";job=" + PercentEncode(tag.job_id) +
         ";model=" + PercentEncode(tag.model) +
         ";max_s=" + std::to_string(tag.max_duration_s) +
         ";cards=" + std::to_string(tag.cards);
}

std::optional<JobTag> DecodeJobTag(std::string_view comment) {
  comment = Trim(comment);
  if (comment.substr(0, kTagPrefix.size()) != kTagPrefix) return std::nullopt;
  comment.remove_prefix(kTagPrefix.size());
  JobTag tag;
  bool has_owner = false;
  bool has_job = false;
  for (auto field : Split(comment, ';')) {
    auto pair = Split(field, '=', 2);
    if (pair.size() != 2) return std::nullopt;
    auto value = PercentDecode(pair[1]);
    if (!value) return std::nullopt;
    if (pair[0] == "owner") {
      tag.owner = *value;
      has_owner = true;
    } else if (pair[0] == "job") {
      tag.job_id = *value;
      has_job = true;
    } else if (pair[0] == "model") {
      tag.model = *value;
    } else if (pair[0] == "max_s") {
      auto number = ToInt<uint32_t>(*value);
      if (!number) return std::nullopt;
      tag.max_duration_s = *number;
    } else if (pair[0] == "cards") {
      auto number = ToInt<uint32_t>(*value);
      if (!number) return std::nullopt;
      tag.cards = *number;
    }
    // Unknown fields come from a newer agent: ignored.
  }
  if (!has_owner || !has_job || tag.owner.empty() || tag.job_id.empty()) {
    return std::nullopt;
  }
  return tag;
}

bool IsTransientSlurmError(std::string_view stderr_text) {
  static constexpr std::string_view kTransient[] = {
      "unable to contact slurm controller",
      "socket timed out",
      "connection refused",
      "zero bytes were transmitted",
      "communication connection failure",
      "standby mode",
      "temporarily unable",
      "resource temporarily unavailable",
      "slurmctld not responding",
      "munge",  // the site's munged restarting: "Munge encode failed"
  };
  for (auto needle : kTransient) {
    if (ContainsNoCase(stderr_text, needle)) return true;
  }
  return false;
}

bool IsInvalidJobIdError(std::string_view stderr_text) {
  return ContainsNoCase(stderr_text, "invalid job id");
}

}  // namespace computenet::provider
