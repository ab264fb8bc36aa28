// Topology of a simulated federation (computenet-sim, docs/simulation.md):
// regions with one broker each, which brokers peer and the link latency
// between them, and the provider sites of each region with their
// accelerator model (from the catalog), nodes, fabrics, price and
// reliability. Read from a TOML file; a [[site_group]] expands into many
// sites deterministically from the file's seed, so a national scenario of
// thousands of sites stays a short file.
//
// Thread safety: plain values and stateless functions; safe from any thread.
#ifndef COMPUTENET_SIM_TOPOLOGY_H_
#define COMPUTENET_SIM_TOPOLOGY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/matching/accelerator_catalog.h"

namespace computenet::sim {

struct Region {
  std::string name;
  // Relative share of the jobs whose home is this region.
  uint32_t demand_weight = 1;
  // The broker's fee on usage charged there, basis points (0..10000).
  uint32_t fee_bps = 0;
};

struct Link {
  std::string a;
  std::string b;
  int64_t latency_ms = 0;
};

struct Site {
  std::string name;
  std::string region;
  std::string model;  // a catalog model name
  uint32_t nodes = 1;
  uint32_t cards_per_node = 8;
  // Nodes per fabric (NVLink/IB domain); gangs stay inside one.
  uint32_t nodes_per_fabric = 1;
  int64_t price_per_card_hour = 0;  // minor units
  uint32_t reliability_permille = 900;
  uint64_t cards() const { return uint64_t{nodes} * cards_per_node; }
};

struct Topology {
  std::string currency = "CNY";
  uint64_t seed = 1;
  std::vector<Region> regions;
  std::vector<Link> links;
  std::vector<Site> sites;

  // Index into regions, or nullopt.
  std::optional<size_t> RegionIndex(const std::string& name) const;
  // Latency of the link between two regions; nullopt if they do not peer.
  std::optional<int64_t> Latency(const std::string& a,
                                 const std::string& b) const;
  uint64_t TotalCards() const;
};

// Parses a topology. INVALID_ARGUMENT as "origin:line: message" for TOML
// syntax errors, unknown keys, missing or out-of-range values, duplicate
// names, links or sites naming an unknown region, and models the catalog
// does not know.
StatusOr<Topology> ParseTopology(const std::string& toml_text,
                                 const std::string& origin,
                                 const matching::AcceleratorCatalog& catalog);
// NOT_FOUND if the file cannot be read; otherwise as ParseTopology.
StatusOr<Topology> LoadTopology(const std::string& path,
                                const matching::AcceleratorCatalog& catalog);

}  // namespace computenet::sim

#endif  // COMPUTENET_SIM_TOPOLOGY_H_
