#include "computenet/matching/accelerator_catalog.h"

#include <cmath>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "computenet/common/files.h"

namespace computenet::matching {

// The shipped catalog's text, generated from matching/catalog/accelerators.toml.
extern const char kBuiltInCatalogToml[];

namespace {

constexpr uint64_t kMaxGflops = 100'000'000;  // 100 PFLOPS per card: a typo

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgumentError(where + ": " + what);
}

// TFLOPS as written (a TOML float or integer) to integer GFLOPS. Catalog
// figures have at most three decimals, so rounding to GFLOPS is exact.
StatusOr<uint64_t> Gflops(const toml::table& table, const std::string& key,
                          const std::string& where, bool required) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return Bad(where, "missing '" + key + "'");
    return uint64_t{0};
  }
  std::optional<double> value = node->value<double>();
  if (!value || !std::isfinite(*value) || *value < 0 ||
      *value * 1000 > static_cast<double>(kMaxGflops)) {
    return Bad(where, "'" + key + "' must be a number of TFLOPS in 0..100000");
  }
  return static_cast<uint64_t>(std::llround(*value * 1000));
}

StatusOr<std::string> String(const toml::table& table, const std::string& key,
                             const std::string& where) {
  auto value = table[key].value<std::string>();
  if (!value || value->empty()) {
    return Bad(where, "'" + key + "' must be a non-empty string");
  }
  return *value;
}

}  // namespace

std::string_view FigureSourceName(FigureSource source) {
  switch (source) {
    case FigureSource::kNominal: return "nominal";
    case FigureSource::kMeasured: return "measured";
    case FigureSource::kUnverified: return "unverified";
  }
  return "unknown";
}

StatusOr<AcceleratorCatalog> AcceleratorCatalog::Parse(
    const std::string& toml_text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << origin << ": " << error.description() << " at line "
        << error.source().begin.line;
    return InvalidArgumentError(out.str());
  }
  for (const auto& [key, value] : root) {
    if (key.str() != "reference" && key.str() != "accelerator") {
      return Bad(origin, "unknown key '" + std::string(key.str()) + "'");
    }
  }
  AcceleratorCatalog catalog;
  const toml::array* list = root["accelerator"].as_array();
  if (list == nullptr || list->empty()) {
    return Bad(origin, "at least one [[accelerator]] is required");
  }
  const std::set<std::string> allowed = {
      "model",      "aliases",           "vendor",      "class",
      "memory_gib", "fp16_dense_tflops", "fp32_tflops", "source",
      "figures",    "interconnect"};
  size_t index = 0;
  for (const auto& element : *list) {
    const std::string where =
        origin + ": accelerator[" + std::to_string(index++) + "]";
    const toml::table* table = element.as_table();
    if (table == nullptr) return Bad(where, "not a table");
    for (const auto& [key, value] : *table) {
      if (allowed.count(std::string(key.str())) == 0) {
        return Bad(where, "unknown key '" + std::string(key.str()) + "'");
      }
    }
    AcceleratorSpec spec;
    CN_ASSIGN_OR_RETURN(spec.model, String(*table, "model", where));
    CN_ASSIGN_OR_RETURN(spec.vendor, String(*table, "vendor", where));
    CN_ASSIGN_OR_RETURN(spec.vendor_class, String(*table, "class", where));
    CN_ASSIGN_OR_RETURN(spec.source, String(*table, "source", where));
    if (const toml::node* figures = table->get("figures")) {
      auto text = figures->value<std::string>();
      if (!text || (*text != "datasheet" && *text != "reported")) {
        return Bad(where, "'figures' is \"datasheet\" or \"reported\"");
      }
      spec.reported = *text == "reported";
    }
    if (const toml::node* interconnect = table->get("interconnect")) {
      auto text = interconnect->value<std::string>();
      if (!text) return Bad(where, "'interconnect' must be a string");
      spec.interconnect = *text;
    }
    CN_ASSIGN_OR_RETURN(spec.dense_gflops,
                        Gflops(*table, "fp16_dense_tflops", where, true));
    if (spec.dense_gflops == 0) {
      return Bad(where, "fp16_dense_tflops must be positive");
    }
    CN_ASSIGN_OR_RETURN(spec.fp32_gflops,
                        Gflops(*table, "fp32_tflops", where, false));
    auto memory = (*table)["memory_gib"].value_exact<int64_t>();
    if (!memory || *memory <= 0 || *memory > 1 << 20) {
      return Bad(where, "'memory_gib' must be a positive integer");
    }
    spec.memory_mib = static_cast<uint64_t>(*memory) * 1024;
    if (const toml::node* aliases = table->get("aliases")) {
      const toml::array* array = aliases->as_array();
      if (array == nullptr) return Bad(where, "'aliases' must be an array");
      for (const auto& alias : *array) {
        auto text = alias.value<std::string>();
        if (!text || text->empty()) {
          return Bad(where, "'aliases' must hold non-empty strings");
        }
        spec.aliases.push_back(*text);
      }
    }
    const size_t position = catalog.entries_.size();
    std::vector<std::string> names = spec.aliases;
    names.push_back(spec.model);
    for (const auto& name : names) {
      if (!catalog.by_name_.emplace(name, position).second) {
        return Bad(where, "model or alias '" + name + "' is listed twice");
      }
    }
    catalog.entries_.push_back(std::move(spec));
  }
  auto reference = root["reference"].value<std::string>();
  if (!reference) return Bad(origin, "'reference' (e.g. \"A100\") is required");
  auto it = catalog.by_name_.find(*reference);
  if (it == catalog.by_name_.end()) {
    return Bad(origin, "reference model '" + *reference + "' is not listed");
  }
  catalog.reference_ = it->second;
  return catalog;
}

StatusOr<AcceleratorCatalog> AcceleratorCatalog::Load(const std::string& path) {
  CN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 4 << 20));
  return Parse(text, path);
}

std::shared_ptr<const AcceleratorCatalog> AcceleratorCatalog::BuiltIn() {
  static const std::shared_ptr<const AcceleratorCatalog> catalog = [] {
    auto parsed = Parse(kBuiltInCatalogToml, "built-in catalog");
    // The shipped file is parsed by a unit test: failing here is a build bug.
    if (!parsed.ok()) std::abort();
    return std::make_shared<const AcceleratorCatalog>(std::move(*parsed));
  }();
  return catalog;
}

const AcceleratorSpec* AcceleratorCatalog::Find(const std::string& model) const {
  auto it = by_name_.find(model);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

StatusOr<CardCompute> AcceleratorCatalog::Resolve(
    const v1::Accelerator& accelerator) const {
  if (accelerator.measured_dense_gflops() > kMaxGflops) {
    return InvalidArgumentError("accelerator " + accelerator.model() +
                                ": measured_dense_gflops is implausibly large");
  }
  CardCompute out;
  const AcceleratorSpec* spec = Find(accelerator.model());
  if (spec == nullptr) {
    if (accelerator.measured_dense_gflops() == 0 ||
        accelerator.vendor_class().empty()) {
      return InvalidArgumentError(
          "accelerator model '" + accelerator.model() +
          "' is not in the broker's catalog: supply measured_dense_gflops "
          "and vendor_class for it (it will be flagged unverified)");
    }
    if (accelerator.vendor_class().size() > 32) {
      return InvalidArgumentError("accelerator " + accelerator.model() +
                                  ": vendor_class longer than 32 bytes");
    }
    out.vendor_class = accelerator.vendor_class();
    out.dense_gflops = accelerator.measured_dense_gflops();
    out.source = FigureSource::kUnverified;
    out.basis = "unverified: provider-supplied " +
                std::to_string(out.dense_gflops) + " GFLOPS";
    return out;
  }
  // A known model keeps the catalog's class even if the provider claims
  // another: "domestic only" must mean what the catalog says.
  out.vendor_class = spec->vendor_class;
  if (accelerator.measured_dense_gflops() > 0) {
    out.dense_gflops = accelerator.measured_dense_gflops();
    out.source = FigureSource::kMeasured;
    out.basis = "measured: " + std::to_string(out.dense_gflops) + " GFLOPS" +
                (accelerator.measurement().empty()
                     ? std::string()
                     : " (" + accelerator.measurement().substr(0, 200) + ")");
  } else {
    out.dense_gflops = spec->dense_gflops;
    out.source = FigureSource::kNominal;
    out.basis = (spec->reported ? "nominal (reported, not a datasheet): "
                                : "nominal: ") +
                spec->source;
  }
  return out;
}

Status AcceleratorCatalog::CheckRegistration(
    const v1::RegisterProvider& registration) const {
  for (const auto& node : registration.nodes()) {
    for (const auto& accelerator : node.accelerators()) {
      auto resolved = Resolve(accelerator);
      if (!resolved.ok()) {
        return resolved.status().WithContext("registration: node " +
                                             node.name());
      }
    }
  }
  return OkStatus();
}

uint32_t AcceleratorCatalog::A100MilliOf(uint64_t gflops) const {
  const uint64_t milli = gflops * 1000 / reference_gflops();
  return milli > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(milli);
}

}  // namespace computenet::matching
