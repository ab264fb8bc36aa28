#include "alibaba_trace.h"

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
