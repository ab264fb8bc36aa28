#include "alibaba_trace.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace computenet::bench {
namespace {

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> fields;
  std::stringstream stream(text);
  std::string field;
  while (std::getline(stream, field, ',')) fields.push_back(field);
  if (!text.empty() && text.back() == ',') fields.push_back("");
  return fields;
}

}  // namespace

StatusOr<std::vector<TraceRow>> ReadTraceCsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot open " + path);
  std::vector<TraceRow> rows;
  std::string line;
  if (!std::getline(in, line)) return rows;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = Split(line);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto fields = Split(line);
    TraceRow row;
    for (size_t i = 0; i < header.size(); ++i) {
      row[header[i]] = i < fields.size() ? fields[i] : "";
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

uint64_t TraceNumber(const std::string& text) {
  return text.empty() ? 0 : std::strtoull(text.c_str(), nullptr, 10);
}

namespace {

// Reads a CSV with the required columns; calls row(fields, where) per line.
template <typename Row>
Status ForEachRow(const std::string& path, const std::vector<std::string>& required,
                  Row&& row) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot open " + path);
  std::string line;
  if (!std::getline(in, line)) return InvalidArgumentError(path + ": empty file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = Split(line);
  for (const auto& column : required) {
    if (std::find(header.begin(), header.end(), column) == header.end()) {
      return InvalidArgumentError(path + ":1: no column '" + column + "' in the header");
    }
  }
  size_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto fields = Split(line);
    if (fields.size() > header.size()) {
      return InvalidArgumentError(path + ":" + std::to_string(number) + ": " +
                                  std::to_string(fields.size()) + " fields, the header has " +
                                  std::to_string(header.size()));
    }
    TraceRow values;
    for (size_t i = 0; i < header.size(); ++i) {
      values[header[i]] = i < fields.size() ? fields[i] : "";
    }
    const std::string where = path + ":" + std::to_string(number);
    CN_RETURN_IF_ERROR(row(values, where));
  }
  return OkStatus();
}

// A whole number in [0, limit]; empty reads as 0.
StatusOr<uint64_t> Whole(const TraceRow& row, const std::string& column,
                         const std::string& where, uint64_t limit) {
  auto it = row.find(column);
  const std::string text = it == row.end() ? "" : it->second;
  if (text.empty()) return uint64_t{0};
  if (text.size() > 19 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgumentError(where + ": column '" + column + "' is '" +
                                text.substr(0, 40) + "', not a whole number");
  }
  const uint64_t value = std::strtoull(text.c_str(), nullptr, 10);
  if (value > limit) {
    return InvalidArgumentError(where + ": column '" + column + "' is " + text +
                                ", above " + std::to_string(limit));
  }
  return value;
}

constexpr uint64_t kMaxField = uint64_t{1} << 40;

}  // namespace

StatusOr<std::vector<OpenbNode>> ReadOpenbNodes(const std::string& path) {
  std::vector<OpenbNode> nodes;
  CN_RETURN_IF_ERROR(ForEachRow(
      path, {"sn", "cpu_milli", "memory_mib", "gpu", "model"},
      [&](const TraceRow& row, const std::string& where) -> Status {
        OpenbNode node;
        node.name = row.at("sn");
        node.model = row.at("model");
        CN_ASSIGN_OR_RETURN(node.cpu_milli, Whole(row, "cpu_milli", where, kMaxField));
        CN_ASSIGN_OR_RETURN(node.memory_mib, Whole(row, "memory_mib", where, kMaxField));
        CN_ASSIGN_OR_RETURN(uint64_t gpus, Whole(row, "gpu", where, 4096));
        node.gpus = static_cast<uint32_t>(gpus);
        if (node.name.empty()) return InvalidArgumentError(where + ": empty sn");
        if (node.gpus > 0 && node.model.empty()) {
          return InvalidArgumentError(where + ": a GPU node without a model");
        }
        nodes.push_back(std::move(node));
        return OkStatus();
      }));
  return nodes;
}

StatusOr<std::vector<OpenbPod>> ReadOpenbPods(const std::string& path) {
  std::vector<OpenbPod> pods;
  CN_RETURN_IF_ERROR(ForEachRow(
      path, {"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"},
      [&](const TraceRow& row, const std::string& where) -> Status {
        OpenbPod pod;
        pod.name = row.at("name");
        if (pod.name.empty()) return InvalidArgumentError(where + ": empty name");
        CN_ASSIGN_OR_RETURN(pod.cpu_milli, Whole(row, "cpu_milli", where, kMaxField));
        CN_ASSIGN_OR_RETURN(pod.memory_mib, Whole(row, "memory_mib", where, kMaxField));
        CN_ASSIGN_OR_RETURN(uint64_t num_gpu, Whole(row, "num_gpu", where, 4096));
        CN_ASSIGN_OR_RETURN(uint64_t gpu_milli, Whole(row, "gpu_milli", where, 1000));
        pod.num_gpu = static_cast<uint32_t>(num_gpu);
        pod.gpu_milli = static_cast<uint32_t>(gpu_milli);
        if (pod.num_gpu > 0 && pod.gpu_milli == 0) pod.gpu_milli = 1000;
        if (pod.num_gpu > 1 && pod.gpu_milli < 1000) {
          return InvalidArgumentError(where + ": a share of a card (gpu_milli " +
                                      std::to_string(pod.gpu_milli) + ") on " +
                                      std::to_string(pod.num_gpu) + " cards");
        }
        if (row.count("gpu_spec") != 0) pod.gpu_spec = row.at("gpu_spec");
        if (row.count("qos") != 0) pod.qos = row.at("qos");
        pod.timed = row.count("creation_time") != 0 && row.count("deletion_time") != 0;
        if (pod.timed) {
          CN_ASSIGN_OR_RETURN(uint64_t created, Whole(row, "creation_time", where, kMaxField));
          CN_ASSIGN_OR_RETURN(uint64_t deleted, Whole(row, "deletion_time", where, kMaxField));
          if (deleted < created) {
            return InvalidArgumentError(where + ": deletion_time before creation_time");
          }
          pod.creation_s = static_cast<int64_t>(created);
          pod.deletion_s = static_cast<int64_t>(deleted);
        }
        pods.push_back(std::move(pod));
        return OkStatus();
      }));
  return pods;
}

const std::map<std::string, TraceModel>& TraceModels() {
  static const std::map<std::string, TraceModel> models = {
      {"P100", {16384, 150, 0}},     {"T4", {16384, 250, 0}},
      {"V100M16", {16384, 600, 0}},  {"V100M32", {32768, 700, 0}},
      {"A10", {24576, 500, 0}},      {"G2", {24576, 450, 100000}},
      {"G3", {32768, 800, 150000}},
  };
  return models;
}

}  // namespace computenet::bench
