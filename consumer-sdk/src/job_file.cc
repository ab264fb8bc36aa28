#include "computenet/consumer/job_file.h"

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string_view>
#include <vector>

#include "computenet/common/config_file.h"
#include "computenet/common/files.h"
#include "computenet/common/safe_text.h"
#include "computenet/common/secrets.h"
#include "computenet/consumer/request_forms.h"

namespace computenet::consumer {
namespace {

constexpr size_t kMaxJobFileBytes = 1 << 20;

// Reads one file's keys, each error naming the file, the key and its line.
class Reader {
 public:
  Reader(const toml::table& root, std::string file_name)
      : root_(root), file_(std::move(file_name)) {}

  Status Error(const std::string& key, const toml::node& node,
               const std::string& what) const {
    const auto line = node.source().begin.line;
    return InvalidArgumentError(
        file_ + ": '" + key + "'" +
        (line > 0 ? " at line " + std::to_string(line) : std::string()) + " " +
        what);
  }

  const toml::node* Find(const std::string& key) {
    const toml::node* node = root_.get(key);
    if (node != nullptr) keys_.insert(key);
    return node;
  }

  // A string without NUL bytes (a C string would end there).
  Status String(const std::string& key, std::string* out) {
    const toml::node* node = Find(key);
    if (node == nullptr) return OkStatus();
    auto value = node->value_exact<std::string>();
    if (!value) return Error(key, *node, "must be a string");
    if (value->find('\0') != std::string::npos) {
      return Error(key, *node, "contains a NUL byte");
    }
    *out = *value;
    return OkStatus();
  }

  // A list of strings, or one string (for the "A800|H800" form).
  Status Strings(const std::string& key, std::vector<std::string>* out) {
    const toml::node* node = Find(key);
    if (node == nullptr) return OkStatus();
    if (auto one = node->value_exact<std::string>()) {
      out->push_back(*one);
    } else if (const toml::array* list = node->as_array()) {
      for (const toml::node& element : *list) {
        auto text = element.value_exact<std::string>();
        if (!text) return Error(key, element, "must be a list of strings");
        out->push_back(*text);
      }
    } else {
      return Error(key, *node, "must be a string or a list of strings");
    }
    for (const std::string& text : *out) {
      if (text.find('\0') != std::string::npos) {
        return Error(key, *node, "contains a NUL byte");
      }
    }
    return OkStatus();
  }

  template <typename T>
  Status Integer(const std::string& key, T* out) {
    const toml::node* node = Find(key);
    if (node == nullptr) return OkStatus();
    auto value = node->value_exact<int64_t>();
    if (!value) return Error(key, *node, "must be an integer");
    // No number in a job file is negative.
    const uint64_t high = static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (*value < 0 || static_cast<uint64_t>(*value) > high) {
      return Error(key, *node,
                   "must be from 0 to " + std::to_string(high) + ", not " +
                       std::to_string(*value));
    }
    *out = static_cast<T>(*value);
    return OkStatus();
  }

  Status Bool(const std::string& key, bool* out) {
    const toml::node* node = Find(key);
    if (node == nullptr) return OkStatus();
    auto value = node->value_exact<bool>();
    if (!value) return Error(key, *node, "must be true or false");
    *out = *value;
    return OkStatus();
  }

  const std::set<std::string>& keys() const { return keys_; }
  const std::string& file() const { return file_; }

 private:
  const toml::table& root_;
  std::string file_;
  std::set<std::string> keys_;
};

}  // namespace

StatusOr<JobFile> ParseJobFile(const std::string& toml_text,
                               const std::string& file_name) {
  const std::string file = SafeText(file_name, 256);
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << file << ": " << error.description() << " at line "
        << error.source().begin.line;
    return InvalidArgumentError(out.str());
  }
  CN_RETURN_IF_ERROR(CheckKeys(root,
                               {"name",
                                "command",
                                "max_duration_s",
                                "models",
                                "cards",
                                "nodes",
                                "gpu_milli",
                                "a100_equivalents",
                                "min_memory_mib",
                                "vendor_classes",
                                "cpu_milli_per_card",
                                "host_memory_mib_per_card",
                                "regions",
                                "prefer_regions",
                                "exclude_providers",
                                "max_price",
                                "max_price_per_a100_hour",
                                "preemptible",
                                "priority",
                                "max_attempts",
                                "network_access",
                                "idempotency_key",
                                "inputs",
                                "env",
                                "secret_env",
                                "secret_env_files"},
                               file));
  Reader reader(root, file);
  JobFile job;
  v1::JobSpec& spec = job.spec;

  std::string text;
  CN_RETURN_IF_ERROR(reader.String("name", &text));
  spec.set_name(text);
  std::vector<std::string> command;
  CN_RETURN_IF_ERROR(reader.Strings("command", &command));
  if (const toml::node* node = root.get("command"); node && !node->is_array()) {
    return reader.Error("command", *node,
                        "must be a list: the program and its arguments");
  }
  for (auto& arg : command) spec.add_command(std::move(arg));
  CN_RETURN_IF_ERROR(reader.String("idempotency_key", &job.idempotency_key));
  CN_RETURN_IF_ERROR(reader.Strings("inputs", &job.inputs));
  for (const auto& input : job.inputs) {
    if (input.empty() || input.find('\0') != std::string::npos) {
      return reader.Error("inputs", *root.get("inputs"),
                          "must list paths (no empty ones, no NUL)");
    }
  }

  uint32_t u32 = 0;
  for (const auto& [key, setter] :
       std::vector<std::pair<const char*, void (v1::JobSpec::*)(uint32_t)>>{
           {"max_duration_s", &v1::JobSpec::set_max_duration_s},
           {"cards", &v1::JobSpec::set_cards_per_node},
           {"nodes", &v1::JobSpec::set_nodes},
           {"gpu_milli", &v1::JobSpec::set_gpu_milli},
           {"cpu_milli_per_card", &v1::JobSpec::set_cpu_milli_per_card},
           {"max_attempts", &v1::JobSpec::set_max_attempts}}) {
    if (root.get(key) == nullptr) continue;
    CN_RETURN_IF_ERROR(reader.Integer(key, &u32));
    (spec.*setter)(u32);
  }
  uint64_t u64 = 0;
  for (const auto& [key, setter] :
       std::vector<std::pair<const char*, void (v1::JobSpec::*)(uint64_t)>>{
           {"min_memory_mib", &v1::JobSpec::set_min_memory_mib},
           {"host_memory_mib_per_card",
            &v1::JobSpec::set_host_memory_mib_per_card}}) {
    if (root.get(key) == nullptr) continue;
    CN_RETURN_IF_ERROR(reader.Integer(key, &u64));
    (spec.*setter)(u64);
  }
  int64_t i64 = 0;
  for (const auto& [key, setter] :
       std::vector<std::pair<const char*, void (v1::JobSpec::*)(int64_t)>>{
           {"max_price", &v1::JobSpec::set_max_price_per_card_hour},
           {"max_price_per_a100_hour",
            &v1::JobSpec::set_max_price_per_a100_hour}}) {
    if (root.get(key) == nullptr) continue;
    CN_RETURN_IF_ERROR(reader.Integer(key, &i64));
    (spec.*setter)(i64);
  }

  if (const toml::node* node = reader.Find("a100_equivalents")) {
    std::string decimal;
    if (auto whole = node->value_exact<int64_t>()) {
      decimal = std::to_string(*whole);
    } else if (auto given = node->value_exact<std::string>()) {
      decimal = *given;
    } else {
      return reader.Error("a100_equivalents", *node,
                          "must be an integer or a decimal string such as "
                          "\"2.5\" (no floating point)");
    }
    auto milli =
        ParseMilli(decimal, file + ": 'a100_equivalents'", 100'000'000);
    if (!milli.ok()) return milli.status();
    spec.set_a100_equivalents_milli(*milli);
  }

  for (const auto& [key, field] :
       std::vector<std::pair<const char*,
                             google::protobuf::RepeatedPtrField<std::string>*>>{
           {"models", spec.mutable_accelerator_models()},
           {"vendor_classes", spec.mutable_vendor_classes()},
           {"regions", spec.mutable_allowed_regions()},
           {"prefer_regions", spec.mutable_preferred_regions()},
           {"exclude_providers", spec.mutable_excluded_providers()}}) {
    std::vector<std::string> entries;
    CN_RETURN_IF_ERROR(reader.Strings(key, &entries));
    CN_ASSIGN_OR_RETURN(auto names,
                        ParseAlternatives(entries, file + ": '" + key + "'"));
    for (auto& name : names) field->Add(std::move(name));
  }

  bool flag = false;
  if (root.get("preemptible") != nullptr) {
    CN_RETURN_IF_ERROR(reader.Bool("preemptible", &flag));
    spec.set_preemptible(flag);
  }
  if (root.get("network_access") != nullptr) {
    CN_RETURN_IF_ERROR(reader.Bool("network_access", &flag));
    spec.set_network_access(flag);
  }
  if (root.get("priority") != nullptr) {
    CN_RETURN_IF_ERROR(reader.String("priority", &text));
    auto priority = ParsePriorityClass(text);
    if (!priority.ok()) {
      return reader.Error("priority", *root.get("priority"),
                          "must be low, normal or high");
    }
    spec.set_priority(*priority);
  }

  if (const toml::node* node = reader.Find("env")) {
    const toml::table* env = node->as_table();
    if (env == nullptr) return reader.Error("env", *node, "must be a table");
    for (const auto& [key, value] : *env) {
      const std::string name(key.str());
      auto string_value = value.value_exact<std::string>();
      if (!string_value) {
        return reader.Error("env." + SafeText(name, 64), value,
                            "must be a string");
      }
      if (name.empty() || name.find('=') != std::string::npos ||
          name.find('\0') != std::string::npos ||
          string_value->find('\0') != std::string::npos) {
        return reader.Error("env." + SafeText(name, 64), value,
                            "needs a name without '=' or NUL and a value "
                            "without NUL");
      }
      (*spec.mutable_env())[name] = *string_value;
    }
  }
  for (const char* table_key : {"secret_env", "secret_env_files"}) {
    const toml::node* node = reader.Find(table_key);
    if (node == nullptr) continue;
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      return reader.Error(table_key, *node, "must be a table");
    }
    const bool files = std::string_view(table_key) == "secret_env_files";
    for (const auto& [key, value] : *table) {
      const std::string name(key.str());
      const std::string where =
          std::string(table_key) + "." + SafeText(name, 64);
      auto string_value = value.value_exact<std::string>();
      if (!string_value) return reader.Error(where, value, "must be a string");
      if (!IsEnvVariableName(name)) {
        return reader.Error(where, value, "is not a variable name");
      }
      if (spec.env().count(name) != 0 || spec.secret_env().count(name) != 0 ||
          job.secret_env_files.count(name) != 0) {
        return reader.Error(where, value, "is set twice");
      }
      if (files) {
        job.secret_env_files[name] = *string_value;
      } else {
        (*spec.mutable_secret_env())[name] = *string_value;
      }
    }
  }
  job.keys = reader.keys();
  return job;
}

StatusOr<JobFile> LoadJobFile(const std::string& path) {
  CN_ASSIGN_OR_RETURN(std::string text,
                      ReadFileToString(path, kMaxJobFileBytes));
  CN_ASSIGN_OR_RETURN(JobFile job, ParseJobFile(text, path));
  const std::filesystem::path input_base =
      std::filesystem::path(path).parent_path();
  for (auto& input : job.inputs) {
    if (std::filesystem::path(input).is_relative()) {
      input = (input_base / input).lexically_normal().string();
    }
  }
  const size_t slash = path.rfind('/');
  const std::string base =
      slash == std::string::npos ? "" : path.substr(0, slash + 1);
  for (const auto& [name, file] : job.secret_env_files) {
    const std::string resolved =
        !file.empty() && file[0] == '/' ? file : base + file;
    auto value = ReadSecretValueFile(resolved);
    if (!value.ok()) {
      return value.status().WithContext(path + ": secret_env_files." + name);
    }
    (*job.spec.mutable_secret_env())[name] = std::move(*value);
  }
  return job;
}

}  // namespace computenet::consumer
