#include "computenet/sim/topology.h"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "computenet/common/files.h"

namespace computenet::sim {
namespace {

// Every message names the file and the line of the value at fault, so an
// operator editing a 500-line scenario finds it at once.
Status ErrorAt(const std::string& origin, const toml::node& node,
               const std::string& message) {
  std::ostringstream out;
  out << origin << ":" << node.source().begin.line << ": " << message;
  return InvalidArgumentError(out.str());
}

Status CheckKeys(const std::string& origin, const toml::table& table,
                 const std::set<std::string>& allowed,
                 const std::string& what) {
  for (const auto& [key, value] : table) {
    if (allowed.count(std::string(key.str())) == 0) {
      return ErrorAt(origin, value,
                     "unknown key '" + std::string(key.str()) + "' in " + what);
    }
  }
  return OkStatus();
}

Status GetString(const std::string& origin, const toml::table& table,
                 const std::string& key, bool required, const std::string& what,
                 std::string* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return ErrorAt(origin, table, what + " needs '" + key + "'");
    return OkStatus();
  }
  const auto* value = node->as_string();
  if (value == nullptr || value->get().empty()) {
    return ErrorAt(origin, *node,
                   what + ": '" + key + "' must be a non-empty string");
  }
  *out = value->get();
  return OkStatus();
}

Status GetInt(const std::string& origin, const toml::table& table,
              const std::string& key, bool required, int64_t min, int64_t max,
              const std::string& what, int64_t* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return ErrorAt(origin, table, what + " needs '" + key + "'");
    return OkStatus();
  }
  const auto* value = node->as_integer();
  if (value == nullptr) {
    return ErrorAt(origin, *node, what + ": '" + key + "' must be an integer");
  }
  if (value->get() < min || value->get() > max) {
    return ErrorAt(origin, *node,
                   what + ": '" + key + "' must be in " + std::to_string(min) +
                       ".." + std::to_string(max));
  }
  *out = value->get();
  return OkStatus();
}

// An integer or a [min, max] range of integers.
Status GetRange(const std::string& origin, const toml::table& table,
                const std::string& key, bool required, int64_t min, int64_t max,
                const std::string& what, int64_t* lo, int64_t* hi) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return ErrorAt(origin, table, what + " needs '" + key + "'");
    return OkStatus();
  }
  if (node->is_integer()) {
    CN_RETURN_IF_ERROR(GetInt(origin, table, key, true, min, max, what, lo));
    *hi = *lo;
    return OkStatus();
  }
  const auto* array = node->as_array();
  if (array == nullptr || array->size() != 2 || !(*array)[0].is_integer() ||
      !(*array)[1].is_integer()) {
    return ErrorAt(origin, *node,
                   what + ": '" + key + "' must be an integer or [min, max]");
  }
  *lo = (*array)[0].as_integer()->get();
  *hi = (*array)[1].as_integer()->get();
  if (*lo < min || *hi > max || *lo > *hi) {
    return ErrorAt(origin, *node,
                   what + ": '" + key + "' must be a range within " +
                       std::to_string(min) + ".." + std::to_string(max));
  }
  return OkStatus();
}

// Uniform in [lo, hi] from the generator's raw output: the standard
// distributions differ between library versions, and a scenario must expand
// the same everywhere.
int64_t Draw(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(rng() % span);
}

const toml::array* GetTables(const toml::table& root, const std::string& key) {
  const toml::node* node = root.get(key);
  return node == nullptr ? nullptr : node->as_array();
}

}  // namespace

std::optional<size_t> Topology::RegionIndex(const std::string& name) const {
  for (size_t i = 0; i < regions.size(); ++i) {
    if (regions[i].name == name) return i;
  }
  return std::nullopt;
}

std::optional<int64_t> Topology::Latency(const std::string& a,
                                         const std::string& b) const {
  for (const auto& link : links) {
    if ((link.a == a && link.b == b) || (link.a == b && link.b == a)) {
      return link.latency_ms;
    }
  }
  return std::nullopt;
}

uint64_t Topology::TotalCards() const {
  uint64_t total = 0;
  for (const auto& site : sites) total += site.cards();
  return total;
}

StatusOr<Topology> ParseTopology(const std::string& toml_text,
                                 const std::string& origin,
                                 const matching::AcceleratorCatalog& catalog) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << origin << ":" << error.source().begin.line << ": "
        << error.description();
    return InvalidArgumentError(out.str());
  }
  CN_RETURN_IF_ERROR(
      CheckKeys(origin, root,
                {"currency", "seed", "region", "link", "site", "site_group"},
                "the topology"));
  Topology topology;
  CN_RETURN_IF_ERROR(GetString(origin, root, "currency", false, "the topology",
                               &topology.currency));
  int64_t seed = 1;
  CN_RETURN_IF_ERROR(
      GetInt(origin, root, "seed", false, 0, INT64_MAX, "the topology", &seed));
  topology.seed = static_cast<uint64_t>(seed);

  auto tables = [&](const std::string& key, bool required,
                    std::vector<const toml::table*>* out) -> Status {
    const toml::node* node = root.get(key);
    if (node == nullptr) {
      if (required) {
        return InvalidArgumentError(
            origin + ":1: the topology needs at least one [[" + key + "]]");
      }
      return OkStatus();
    }
    const toml::array* array = GetTables(root, key);
    if (array == nullptr) {
      return ErrorAt(
          origin, *node,
          "'" + key + "' must be an array of tables ([[" + key + "]])");
    }
    for (const auto& element : *array) {
      const toml::table* table = element.as_table();
      if (table == nullptr) {
        return ErrorAt(origin, element, "each '" + key + "' must be a table");
      }
      out->push_back(table);
    }
    return OkStatus();
  };

  std::vector<const toml::table*> regions, links, sites, groups;
  CN_RETURN_IF_ERROR(tables("region", true, &regions));
  CN_RETURN_IF_ERROR(tables("link", false, &links));
  CN_RETURN_IF_ERROR(tables("site", false, &sites));
  CN_RETURN_IF_ERROR(tables("site_group", false, &groups));

  for (const toml::table* table : regions) {
    CN_RETURN_IF_ERROR(CheckKeys(
        origin, *table, {"name", "demand_weight", "fee_bps"}, "[[region]]"));
    Region region;
    CN_RETURN_IF_ERROR(
        GetString(origin, *table, "name", true, "[[region]]", &region.name));
    int64_t weight = 1, fee = 0;
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "demand_weight", false, 0,
                              1'000'000, "region " + region.name, &weight));
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "fee_bps", false, 0, 10'000,
                              "region " + region.name, &fee));
    region.demand_weight = static_cast<uint32_t>(weight);
    region.fee_bps = static_cast<uint32_t>(fee);
    if (topology.RegionIndex(region.name)) {
      return ErrorAt(origin, *table, "duplicate region '" + region.name + "'");
    }
    topology.regions.push_back(std::move(region));
  }

  auto known_region = [&](const toml::table& table, const std::string& name,
                          const std::string& what) -> Status {
    if (!topology.RegionIndex(name)) {
      return ErrorAt(origin, table, what + ": unknown region '" + name + "'");
    }
    return OkStatus();
  };

  for (const toml::table* table : links) {
    CN_RETURN_IF_ERROR(
        CheckKeys(origin, *table, {"between", "latency_ms"}, "[[link]]"));
    const toml::node* between = table->get("between");
    const toml::array* pair =
        between == nullptr ? nullptr : between->as_array();
    if (pair == nullptr || pair->size() != 2 || !(*pair)[0].is_string() ||
        !(*pair)[1].is_string()) {
      return ErrorAt(origin,
                     between == nullptr ? static_cast<const toml::node&>(*table)
                                        : *between,
                     "[[link]] needs 'between' = [\"region\", \"region\"]");
    }
    Link link;
    link.a = (*pair)[0].as_string()->get();
    link.b = (*pair)[1].as_string()->get();
    CN_RETURN_IF_ERROR(known_region(*table, link.a, "[[link]]"));
    CN_RETURN_IF_ERROR(known_region(*table, link.b, "[[link]]"));
    if (link.a == link.b) {
      return ErrorAt(origin, *table,
                     "[[link]] joins region '" + link.a + "' to itself");
    }
    if (topology.Latency(link.a, link.b)) {
      return ErrorAt(
          origin, *table,
          "duplicate link between '" + link.a + "' and '" + link.b + "'");
    }
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "latency_ms", true, 0, 60'000,
                              "[[link]]", &link.latency_ms));
    topology.links.push_back(std::move(link));
  }

  std::set<std::string> site_names;
  auto add_site = [&](const toml::table& table, Site site) -> Status {
    if (catalog.Find(site.model) == nullptr) {
      return ErrorAt(origin, table,
                     "site " + site.name + ": model '" + site.model +
                         "' is not in the accelerator catalog");
    }
    if (!site_names.insert(site.name).second) {
      return ErrorAt(origin, table, "duplicate site '" + site.name + "'");
    }
    topology.sites.push_back(std::move(site));
    return OkStatus();
  };

  for (const toml::table* table : sites) {
    CN_RETURN_IF_ERROR(
        CheckKeys(origin, *table,
                  {"name", "region", "model", "nodes", "cards_per_node",
                   "nodes_per_fabric", "price", "reliability_permille"},
                  "[[site]]"));
    Site site;
    CN_RETURN_IF_ERROR(
        GetString(origin, *table, "name", true, "[[site]]", &site.name));
    const std::string what = "site " + site.name;
    CN_RETURN_IF_ERROR(
        GetString(origin, *table, "region", true, what, &site.region));
    CN_RETURN_IF_ERROR(known_region(*table, site.region, what));
    CN_RETURN_IF_ERROR(
        GetString(origin, *table, "model", true, what, &site.model));
    int64_t nodes = 1, cards = 8, fabric = 1, price = 0, reliability = 900;
    CN_RETURN_IF_ERROR(
        GetInt(origin, *table, "nodes", true, 1, 100'000, what, &nodes));
    CN_RETURN_IF_ERROR(
        GetInt(origin, *table, "cards_per_node", false, 1, 64, what, &cards));
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "nodes_per_fabric", false, 1,
                              100'000, what, &fabric));
    CN_RETURN_IF_ERROR(
        GetInt(origin, *table, "price", true, 1, 100'000'000, what, &price));
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "reliability_permille", false, 0,
                              1000, what, &reliability));
    site.nodes = static_cast<uint32_t>(nodes);
    site.cards_per_node = static_cast<uint32_t>(cards);
    site.nodes_per_fabric = static_cast<uint32_t>(fabric);
    site.price_per_card_hour = price;
    site.reliability_permille = static_cast<uint32_t>(reliability);
    CN_RETURN_IF_ERROR(add_site(*table, std::move(site)));
  }

  std::mt19937_64 rng(topology.seed);
  for (const toml::table* table : groups) {
    CN_RETURN_IF_ERROR(
        CheckKeys(origin, *table,
                  {"region", "prefix", "count", "nodes", "cards_per_node",
                   "nodes_per_fabric", "reliability_permille",
                   "price_jitter_bp", "models"},
                  "[[site_group]]"));
    std::string region, prefix;
    CN_RETURN_IF_ERROR(
        GetString(origin, *table, "region", true, "[[site_group]]", &region));
    CN_RETURN_IF_ERROR(known_region(*table, region, "[[site_group]]"));
    CN_RETURN_IF_ERROR(
        GetString(origin, *table, "prefix", true, "[[site_group]]", &prefix));
    const std::string what = "site_group " + prefix;
    int64_t count = 0, nodes_lo = 1, nodes_hi = 1, cards = 8, fabric = 1,
            rel_lo = 900, rel_hi = 900, jitter = 0;
    CN_RETURN_IF_ERROR(
        GetInt(origin, *table, "count", true, 1, 1'000'000, what, &count));
    CN_RETURN_IF_ERROR(GetRange(origin, *table, "nodes", true, 1, 100'000, what,
                                &nodes_lo, &nodes_hi));
    CN_RETURN_IF_ERROR(
        GetInt(origin, *table, "cards_per_node", false, 1, 64, what, &cards));
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "nodes_per_fabric", false, 1,
                              100'000, what, &fabric));
    CN_RETURN_IF_ERROR(GetRange(origin, *table, "reliability_permille", false,
                                0, 1000, what, &rel_lo, &rel_hi));
    CN_RETURN_IF_ERROR(GetInt(origin, *table, "price_jitter_bp", false, 0,
                              9'000, what, &jitter));
    struct Choice {
      std::string model;
      int64_t weight;
      int64_t price;
    };
    std::vector<Choice> choices;
    int64_t total_weight = 0;
    const toml::node* models = table->get("models");
    const toml::array* list = models == nullptr ? nullptr : models->as_array();
    if (list == nullptr || list->empty()) {
      return ErrorAt(
          origin,
          models == nullptr ? static_cast<const toml::node&>(*table) : *models,
          what +
              " needs 'models' = [{ model = ..., weight = ..., price = ... }, "
              "...]");
    }
    for (const auto& element : *list) {
      const toml::table* entry = element.as_table();
      if (entry == nullptr) {
        return ErrorAt(origin, element,
                       what + ": each of 'models' must be a table");
      }
      CN_RETURN_IF_ERROR(CheckKeys(origin, *entry, {"model", "weight", "price"},
                                   what + " models"));
      Choice choice;
      CN_RETURN_IF_ERROR(
          GetString(origin, *entry, "model", true, what, &choice.model));
      choice.weight = 1;
      CN_RETURN_IF_ERROR(GetInt(origin, *entry, "weight", false, 1, 1'000'000,
                                what, &choice.weight));
      CN_RETURN_IF_ERROR(GetInt(origin, *entry, "price", true, 1, 100'000'000,
                                what, &choice.price));
      if (catalog.Find(choice.model) == nullptr) {
        return ErrorAt(origin, *entry,
                       what + ": model '" + choice.model +
                           "' is not in the accelerator catalog");
      }
      total_weight += choice.weight;
      choices.push_back(std::move(choice));
    }
    for (int64_t i = 0; i < count; ++i) {
      Site site;
      site.name = prefix + "-" + std::to_string(i);
      site.region = region;
      int64_t pick = Draw(rng, 0, total_weight - 1);
      const Choice* chosen = &choices.back();
      for (const auto& choice : choices) {
        if (pick < choice.weight) {
          chosen = &choice;
          break;
        }
        pick -= choice.weight;
      }
      site.model = chosen->model;
      site.nodes = static_cast<uint32_t>(Draw(rng, nodes_lo, nodes_hi));
      site.cards_per_node = static_cast<uint32_t>(cards);
      site.nodes_per_fabric = static_cast<uint32_t>(fabric);
      // Integer jitter of +-jitter basis points around the list price.
      const int64_t bp = Draw(rng, -jitter, jitter);
      site.price_per_card_hour =
          std::max<int64_t>(1, chosen->price + chosen->price * bp / 10'000);
      site.reliability_permille =
          static_cast<uint32_t>(Draw(rng, rel_lo, rel_hi));
      CN_RETURN_IF_ERROR(add_site(*table, std::move(site)));
    }
  }
  if (topology.sites.empty()) {
    return InvalidArgumentError(
        origin + ":1: the topology has no sites ([[site]] or [[site_group]])");
  }
  return topology;
}

StatusOr<Topology> LoadTopology(const std::string& path,
                                const matching::AcceleratorCatalog& catalog) {
  CN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 16 << 20));
  return ParseTopology(text, path, catalog);
}

}  // namespace computenet::sim
