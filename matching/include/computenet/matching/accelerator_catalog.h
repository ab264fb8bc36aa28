// AcceleratorCatalog: what the broker knows about accelerator models, so it
// can compare very different cards: vendor, vendor class ("nvidia",
// "domestic", ...), nominal memory, FP16/BF16 dense and FP32 throughput, and
// the source of each figure. Loaded from a TOML data file
// (matching/catalog/accelerators.toml is shipped, installed next to
// computenet-broker and compiled in as the default; operators extend a copy
// and pass --catalog).
//
// Compute equivalence: a card's normalized compute is its dense FP16/BF16
// throughput divided by the reference model's (A100), in thousandths. The
// figure for a provider's card is, in order: the provider's measured
// benchmark value (recorded as measured), the catalog's nominal figure, or,
// for a model the catalog does not know, the figure the provider supplies
// (recorded as unverified).
//
// Throughput is kept as integer GFLOPS so that rankings and sums are exact.
//
// Thread safety: immutable after construction; safe to share across threads.
#ifndef COMPUTENET_MATCHING_ACCELERATOR_CATALOG_H_
#define COMPUTENET_MATCHING_ACCELERATOR_CATALOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::matching {

struct AcceleratorSpec {
  std::string model;
  std::vector<std::string> aliases;
  std::string vendor;
  std::string vendor_class;
  uint64_t memory_mib = 0;
  uint64_t dense_gflops = 0;  // FP16/BF16 dense, per card
  uint64_t fp32_gflops = 0;   // 0 = not published
  std::string source;         // datasheet or report the figures come from
  // True when the figures are reported (trade press, briefings), not
  // published in a datasheet: the basis says so, so consumers can tell.
  bool reported = false;
  std::string interconnect;  // for humans; empty = not given
};

enum class FigureSource { kNominal, kMeasured, kUnverified };
std::string_view FigureSourceName(FigureSource source);

// The figures the broker uses for one provider's cards of one model.
struct CardCompute {
  std::string vendor_class;
  uint64_t dense_gflops = 0;
  FigureSource source = FigureSource::kNominal;
  // For humans and JobInfo.compute_source: "nominal: <datasheet>",
  // "measured: <how>", "unverified: provider-supplied".
  std::string basis;
};

class AcceleratorCatalog {
 public:
  // Parses the TOML text. INVALID_ARGUMENT naming the entry at fault
  // (missing or non-positive throughput, duplicate model or alias, unknown
  // key, a reference model that is not listed).
  static StatusOr<AcceleratorCatalog> Parse(const std::string& toml_text,
                                            const std::string& origin);
  // NOT_FOUND if the file is missing; otherwise as Parse.
  static StatusOr<AcceleratorCatalog> Load(const std::string& path);
  // The shipped catalog, compiled in. Never fails (checked by a unit test).
  static std::shared_ptr<const AcceleratorCatalog> BuiltIn();

  // The entry for a model name or alias; nullptr if unknown.
  const AcceleratorSpec* Find(const std::string& model) const;
  const std::vector<AcceleratorSpec>& entries() const { return entries_; }
  const AcceleratorSpec& reference() const { return entries_[reference_]; }
  uint64_t reference_gflops() const { return reference().dense_gflops; }

  // The figures for a provider's accelerator entry. INVALID_ARGUMENT for a
  // model the catalog does not know when the provider supplies no
  // measured_dense_gflops or no vendor_class.
  StatusOr<CardCompute> Resolve(const v1::Accelerator& accelerator) const;
  // Resolve for every accelerator of a registration: the first problem.
  Status CheckRegistration(const v1::RegisterProvider& registration) const;

  // Thousandths of the reference card that `gflops` is (rounded down).
  uint32_t A100MilliOf(uint64_t gflops) const;

 private:
  std::vector<AcceleratorSpec> entries_;
  std::map<std::string, size_t> by_name_;  // model names and aliases
  size_t reference_ = 0;
};

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_ACCELERATOR_CATALOG_H_
