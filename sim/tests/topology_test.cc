#include "computenet/sim/topology.h"

#include <gtest/gtest.h>

#include <string>

namespace computenet::sim {
namespace {

const matching::AcceleratorCatalog& Catalog() {
  return *matching::AcceleratorCatalog::BuiltIn();
}

constexpr char kGood[] = R"(currency = "CNY"
seed = 4
[[region]]
name = "north"
demand_weight = 3
fee_bps = 250
[[region]]
name = "west"
[[link]]
between = ["north", "west"]
latency_ms = 30
[[site]]
name = "big"
region = "west"
model = "910B"
nodes = 32
nodes_per_fabric = 32
price = 700
[[site_group]]
region = "north"
prefix = "n"
count = 20
nodes = [1, 4]
price_jitter_bp = 1000
reliability_permille = [900, 950]
models = [{ model = "A100", weight = 1, price = 1000 },
          { model = "H800", weight = 1, price = 2000 }]
)";

TEST(TopologyTest, ParsesRegionsLinksSitesAndExpandsGroups) {
  auto topology = ParseTopology(kGood, "good.toml", Catalog());
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();
  ASSERT_EQ(topology->regions.size(), 2u);
  EXPECT_EQ(topology->regions[0].demand_weight, 3u);
  EXPECT_EQ(topology->regions[0].fee_bps, 250u);
  EXPECT_EQ(topology->regions[1].demand_weight, 1u);
  EXPECT_EQ(topology->Latency("west", "north"), 30);
  EXPECT_FALSE(topology->Latency("north", "east").has_value());
  ASSERT_EQ(topology->sites.size(), 21u);
  EXPECT_EQ(topology->sites[0].cards(), 256u);
  bool saw_a100 = false, saw_h800 = false;
  for (size_t i = 1; i < topology->sites.size(); ++i) {
    const Site& site = topology->sites[i];
    EXPECT_EQ(site.region, "north");
    EXPECT_GE(site.nodes, 1u);
    EXPECT_LE(site.nodes, 4u);
    EXPECT_GE(site.reliability_permille, 900u);
    EXPECT_LE(site.reliability_permille, 950u);
    const int64_t list = site.model == "A100" ? 1000 : 2000;
    EXPECT_GE(site.price_per_card_hour, list - list / 10);
    EXPECT_LE(site.price_per_card_hour, list + list / 10);
    saw_a100 = saw_a100 || site.model == "A100";
    saw_h800 = saw_h800 || site.model == "H800";
  }
  EXPECT_TRUE(saw_a100 && saw_h800);
  // The same file and seed expand to the same sites.
  auto again = ParseTopology(kGood, "good.toml", Catalog());
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < topology->sites.size(); ++i) {
    EXPECT_EQ(again->sites[i].model, topology->sites[i].model);
    EXPECT_EQ(again->sites[i].nodes, topology->sites[i].nodes);
    EXPECT_EQ(again->sites[i].price_per_card_hour,
              topology->sites[i].price_per_card_hour);
  }
}

// Each bad input: the error is INVALID_ARGUMENT and names the file and line.
struct BadCase {
  const char* name;
  std::string text;
  std::string expected;  // file:line: and a phrase of the message
  std::string phrase;
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadCase& bad, std::ostream* out) { *out << bad.name; }

class TopologyBadInputTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(TopologyBadInputTest, ClearErrorWithLineNumber) {
  const BadCase& bad = GetParam();
  auto topology = ParseTopology(bad.text, "bad.toml", Catalog());
  ASSERT_FALSE(topology.ok());
  EXPECT_EQ(topology.status().code(), StatusCode::kInvalidArgument);
  const std::string message = topology.status().message();
  EXPECT_NE(message.find(bad.expected), std::string::npos) << message;
  EXPECT_NE(message.find(bad.phrase), std::string::npos) << message;
}

const std::string kRegion = "[[region]]\nname = \"north\"\n";
const std::string kSite =
    "[[site]]\nname = \"s\"\nregion = \"north\"\nmodel = \"A100\"\nnodes = "
    "2\nprice = 900\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, TopologyBadInputTest,
    ::testing::Values(
        BadCase{"syntax", kRegion + "name = = 3\n", "bad.toml:3:", ""},
        BadCase{"no_region", kSite, "bad.toml:1:", "at least one [[region]]"},
        BadCase{"unknown_key", kRegion + "colour = \"red\"\n" + kSite,
                "bad.toml:3:", "unknown key 'colour'"},
        BadCase{"duplicate_region", kRegion + kRegion + kSite,
                "bad.toml:3:", "duplicate region 'north'"},
        BadCase{
            "link_unknown_region",
            kRegion +
                "[[link]]\nbetween = [\"north\", \"mars\"]\nlatency_ms = 5\n" +
                kSite,
            "bad.toml:3:", "unknown region 'mars'"},
        BadCase{
            "link_missing_latency",
            kRegion +
                "[[region]]\nname = \"west\"\n[[link]]\nbetween = [\"north\", "
                "\"west\"]\n" +
                kSite,
            "bad.toml:5:", "needs 'latency_ms'"},
        BadCase{"unknown_model",
                kRegion + "[[site]]\nname = \"s\"\nregion = \"north\"\nmodel = "
                          "\"Q9000\"\n"
                          "nodes = 2\nprice = 900\n",
                "bad.toml:3:", "not in the accelerator catalog"},
        BadCase{
            "negative_nodes",
            kRegion +
                "[[site]]\nname = \"s\"\nregion = \"north\"\nmodel = \"A100\"\n"
                "nodes = -2\nprice = 900\n",
            "bad.toml:7:", "'nodes' must be in 1..100000"},
        BadCase{
            "price_not_integer",
            kRegion +
                "[[site]]\nname = \"s\"\nregion = \"north\"\nmodel = \"A100\"\n"
                "nodes = 2\nprice = \"cheap\"\n",
            "bad.toml:8:", "'price' must be an integer"},
        BadCase{
            "bad_range",
            kRegion +
                "[[site_group]]\nregion = \"north\"\nprefix = \"g\"\ncount = "
                "2\n"
                "nodes = [5, 1]\nmodels = [{ model = \"A100\", price = 9 }]\n",
            "bad.toml:7:", "'nodes' must be a range"},
        BadCase{"group_without_models",
                kRegion + "[[site_group]]\nregion = \"north\"\nprefix = "
                          "\"g\"\ncount = 2\n"
                          "nodes = 3\n",
                "bad.toml:3:", "needs 'models'"},
        BadCase{"no_sites", kRegion, "bad.toml:1:", "no sites"}),
    [](const ::testing::TestParamInfo<BadCase>& param) {
      return std::string(param.param.name);
    });

TEST(TopologyTest, MissingFileIsNotFound) {
  auto topology = LoadTopology("/nonexistent/topology.toml", Catalog());
  ASSERT_FALSE(topology.ok());
  EXPECT_EQ(topology.status().code(), StatusCode::kNotFound);
}

TEST(TopologyTest, ShippedScenariosParse) {
  for (const char* name : {"short.toml", "national.toml"}) {
    auto topology = LoadTopology(
        std::string(COMPUTENET_SOURCE_DIR) + "/sim/scenarios/" + name,
        Catalog());
    ASSERT_TRUE(topology.ok()) << name << ": " << topology.status().ToString();
  }
  auto national = LoadTopology(
      std::string(COMPUTENET_SOURCE_DIR) + "/sim/scenarios/national.toml",
      Catalog());
  ASSERT_TRUE(national.ok());
  // What issue 15 asks of the national scenario.
  EXPECT_EQ(national->regions.size(), 8u);
  EXPECT_GE(national->sites.size(), 2000u);
  EXPECT_GE(national->TotalCards(), 100'000u);
  bool nvidia = false, domestic = false;
  for (const auto& site : national->sites) {
    const auto* spec = Catalog().Find(site.model);
    ASSERT_NE(spec, nullptr);
    nvidia = nvidia || spec->vendor_class == "nvidia";
    domestic = domestic || spec->vendor_class == "domestic";
  }
  EXPECT_TRUE(nvidia && domestic);
}

}  // namespace
}  // namespace computenet::sim
