// SiteConfig: parsing a provider site's TOML configuration.
#include "computenet/provider/site_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "computenet/matching/accelerator_catalog.h"
#include "computenet/common/files.h"
#include "computenet/common/identity.h"
#include "test_support.h"

namespace computenet::provider {
namespace {

using ::testing::HasSubstr;
using testing::MustGenerateIdentity;
using testing::TempDir;

constexpr char kPrices[] = R"(
[prices]
A800 = 1500
H100 = 3000
)";

constexpr char kNodes[] = R"(
[[nodes]]
name = "node-1"
fabric = "ib-1"
cpu_cores = 64
memory_mib = 524288
accelerators = [ { model = "A800", memory_mib = 81920, count = 8 } ]

[[nodes]]
name = "node-2"
fabric = "ib-1"
accelerators = [
  { model = "A800", memory_mib = 81920, count = 2 },
  { model = "H100", memory_mib = 81920, count = 4 },
]
)";

class SiteConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Identity::Save creates only the last directory of the path.
    std::filesystem::create_directories(dir_.File("keys"));
    Status saved = broker_.Save(dir_.File("keys/broker"));
    ASSERT_TRUE(saved.ok()) << saved.ToString();
  }

  static std::string Header(const std::string& broker_line) {
    return "broker_endpoint = \"tcp://broker.example:7700\"\n" + broker_line +
           "\nidentity_dir = \"keys/site-a\"\n"
           "work_dir = \"/var/lib/computenet/site-a\"\n"
           "site = \"zhangbei-1\"\n"
           "region = \"north\"\n"
           "currency = \"CNY\"\n";
  }

  std::string FullConfig() const {
    return Header("broker_identity = \"keys/broker/identity.pub\"") + kPrices +
           kNodes;
  }

  StatusOr<SiteConfig> Parse(const std::string& text) const {
    return ParseSiteConfig(text, dir_.path());
  }

  void ExpectInvalid(const std::string& text, const std::string& mentions) {
    auto config = Parse(text);
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument)
        << config.status().ToString();
    EXPECT_THAT(config.status().message(), HasSubstr(mentions));
  }

  TempDir dir_;
  Identity broker_ = MustGenerateIdentity("broker");
};

TEST_F(SiteConfigTest, ParsesFullConfig) {
  auto config = Parse(FullConfig());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->broker_endpoint, "tcp://broker.example:7700");
  EXPECT_EQ(config->broker_public_key, broker_.curve().public_z85)
      << "read from broker_identity";
  EXPECT_EQ(config->identity_dir, dir_.path() + "/keys/site-a")
      << "relative to base_dir";
  EXPECT_EQ(config->work_dir, "/var/lib/computenet/site-a")
      << "absolute paths stay";

  const v1::RegisterProvider& registration = config->registration;
  EXPECT_EQ(registration.site(), "zhangbei-1");
  EXPECT_EQ(registration.region(), "north");
  EXPECT_EQ(registration.currency(), "CNY");
  ASSERT_EQ(registration.prices_size(), 2);
  std::map<std::string, int64_t> prices;
  for (const auto& price : registration.prices()) {
    prices[price.model()] = price.per_card_hour();
  }
  EXPECT_EQ(prices["A800"], 1500);
  EXPECT_EQ(prices["H100"], 3000);

  ASSERT_EQ(registration.nodes_size(), 2);
  const v1::Node& first = registration.nodes(0);
  EXPECT_EQ(first.name(), "node-1");
  EXPECT_EQ(first.fabric_id(), "ib-1");
  EXPECT_EQ(first.cpu_cores(), 64u);
  EXPECT_EQ(first.memory_mib(), 524288u);
  ASSERT_EQ(first.accelerators_size(), 1);
  EXPECT_EQ(first.accelerators(0).model(), "A800");
  EXPECT_EQ(first.accelerators(0).memory_mib(), 81920u);
  EXPECT_EQ(first.accelerators(0).count(), 8u);

  const v1::Node& second = registration.nodes(1);
  EXPECT_EQ(second.name(), "node-2");
  EXPECT_EQ(second.cpu_cores(), 0u) << "optional, defaults to 0";
  ASSERT_EQ(second.accelerators_size(), 2);
  EXPECT_EQ(second.accelerators(1).model(), "H100");
  EXPECT_EQ(second.accelerators(1).count(), 4u);
}

TEST_F(SiteConfigTest, PolicyTableBecomesTheRegistrationsPolicy) {
  auto open = Parse(FullConfig());
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->registration.policy().ByteSizeLong(), 0u) << "no [policy]: open";
  auto config = Parse(FullConfig() +
                      "\n[policy]\n"
                      "allowed_organizations = [\"lab-a\", \"lab-b\"]\n"
                      "min_duration_s = 60\nmax_duration_s = 86400\n"
                      "preemptible_only = true\nmax_gang_nodes = 4\nnetwork = false\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const v1::SitePolicy& policy = config->registration.policy();
  ASSERT_EQ(policy.allowed_organizations_size(), 2);
  EXPECT_EQ(policy.allowed_organizations(1), "lab-b");
  EXPECT_EQ(policy.min_duration_s(), 60u);
  EXPECT_EQ(policy.max_duration_s(), 86400u);
  EXPECT_TRUE(policy.preemptible_only());
  EXPECT_EQ(policy.max_gang_nodes(), 4u);
  EXPECT_TRUE(policy.no_network());
  ExpectInvalid(FullConfig() + "\n[policy]\nmax_gang = 4\n", "unknown key");
  ExpectInvalid(FullConfig() + "\n[policy]\nnetwork = \"no\"\n", "true or false");
  ExpectInvalid(FullConfig() + "\n[policy]\nmin_duration_s = 100\nmax_duration_s = 10\n",
                "above max_duration_s");
}

TEST_F(SiteConfigTest, UsageIntervalDefaultsToFiveMinutes) {
  auto config = Parse(FullConfig());
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->usage_interval_s, 300u);
  auto custom = Parse("usage_interval_s = 60\n" + FullConfig());
  ASSERT_TRUE(custom.ok()) << custom.status().ToString();
  EXPECT_EQ(custom->usage_interval_s, 60u);
  auto off = Parse("usage_interval_s = 0\n" + FullConfig());
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->usage_interval_s, 0u) << "0: only the closing record";
  ExpectInvalid("usage_interval_s = -5\n" + FullConfig(), "usage_interval_s");
  ExpectInvalid("usage_interval_s = 100000\n" + FullConfig(),
                "usage_interval_s");
}

TEST_F(SiteConfigTest, LoadSiteConfigResolvesAgainstTheFilesDirectory) {
  ASSERT_TRUE(
      WriteFileAtomically(dir_.File("site.toml"), FullConfig(), 0644).ok());
  auto config = LoadSiteConfig(dir_.File("site.toml"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->broker_public_key, broker_.curve().public_z85);
  EXPECT_EQ(config->identity_dir, dir_.path() + "/keys/site-a");
}

TEST_F(SiteConfigTest, LoadSiteConfigErrorsNameTheFile) {
  ASSERT_TRUE(WriteFileAtomically(dir_.File("site.toml"),
                                  "bogus = 1\n" + FullConfig(), 0644)
                  .ok());
  auto config = LoadSiteConfig(dir_.File("site.toml"));
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("site.toml"));
  EXPECT_THAT(config.status().message(), HasSubstr("bogus"));
  EXPECT_EQ(LoadSiteConfig(dir_.File("absent.toml")).status().code(),
            StatusCode::kNotFound);
}

TEST_F(SiteConfigTest, BrokerPublicKeyGivenDirectly) {
  auto config = Parse(Header("broker_public_key = \"" +
                             broker_.curve().public_z85 + "\"") +
                      kPrices + kNodes);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->broker_public_key, broker_.curve().public_z85);
}

TEST_F(SiteConfigTest, BadBrokerPublicKeyIsInvalid) {
  auto config =
      Parse(Header("broker_public_key = \"not-a-key\"") + kPrices + kNodes);
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SiteConfigTest, BrokerKeyIsRequired) {
  ExpectInvalid(Header("") + kPrices + kNodes, "broker_identity");
}

TEST_F(SiteConfigTest, MissingBrokerIdentityFileIsNotFound) {
  auto config = Parse(Header("broker_identity = \"keys/nobody/identity.pub\"") +
                      kPrices + kNodes);
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound)
      << config.status().ToString();
}

TEST_F(SiteConfigTest, UnknownTopLevelKeyIsNamed) {
  // At the top, before any table header.
  auto config = Parse("broker_endpint = \"typo\"\n" + FullConfig());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              HasSubstr("site config: unknown key 'broker_endpint'"));
}

TEST_F(SiteConfigTest, UnknownTopLevelTableIsNamed) {
  ExpectInvalid(FullConfig() + "\n[limits]\nmax_jobs = 3\n",
                "site config: unknown key 'limits'");
}

TEST_F(SiteConfigTest, UnknownKeyInNodeIsNamed) {
  std::string text = FullConfig();
  const std::string from = "fabric = \"ib-1\"\ncpu_cores";
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), "fabirc = \"ib-1\"\ncpu_cores");
  auto config = Parse(text);
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("nodes[0]"));
  EXPECT_THAT(config.status().message(), HasSubstr("'fabirc'"));
}

TEST_F(SiteConfigTest, SpareNodesSparePricesAndMeasuredFigures) {
  const std::string text =
      Header("broker_identity = \"keys/broker/identity.pub\"") + kPrices +
      "[spare_prices]\nA800 = 900\n" + R"(
[[nodes]]
name = "node-1"
spare = true
accelerators = [
  { model = "A800", memory_mib = 81920, count = 8, measured_dense_gflops = 280000, measurement = "site burn-in" },
]
[[nodes]]
name = "node-2"
spare = false
accelerators = [
  { model = "G2", count = 8, measured_dense_gflops = 100000, vendor = "anon", vendor_class = "nvidia" },
]
)";
  auto config = Parse(text);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const auto& registration = config->registration;
  EXPECT_EQ(registration.nodes(0).offer(), v1::CAPACITY_OFFER_SPARE);
  EXPECT_EQ(registration.nodes(1).offer(), v1::CAPACITY_OFFER_DEDICATED);
  EXPECT_EQ(registration.nodes(0).accelerators(0).measured_dense_gflops(), 280000u);
  EXPECT_EQ(registration.nodes(0).accelerators(0).measurement(), "site burn-in");
  EXPECT_EQ(registration.nodes(1).accelerators(0).vendor_class(), "nvidia");
  ASSERT_EQ(registration.prices(0).model(), "A800");
  ASSERT_TRUE(registration.prices(0).has_spare_per_card_hour());
  EXPECT_EQ(registration.prices(0).spare_per_card_hour(), 900);
  EXPECT_FALSE(registration.prices(1).has_spare_per_card_hour());

  ExpectInvalid(Header("broker_identity = \"keys/broker/identity.pub\"") +
                    kPrices + "[spare_prices]\nT4 = 100\n" + kNodes,
                "spare_prices.T4 has no regular price");
  std::string bad_spare = FullConfig();
  const std::string fabric_line = "fabric = \"ib-1\"";
  bad_spare.replace(bad_spare.find(fabric_line), fabric_line.size(),
                    "spare = \"yes\"");
  ExpectInvalid(bad_spare, "'spare' must be true or false");
}

TEST_F(SiteConfigTest, OfferKindsAndRuntimeOfferChanges) {
  auto with_offers = [&](const std::string& first, const std::string& second,
                         const std::string& a800_price) {
    std::string text = FullConfig();
    const std::string fabric_line = "fabric = \"ib-1\"";
    size_t at = text.find(fabric_line);
    text.insert(at + fabric_line.size(), "\n" + first);
    at = text.find(fabric_line, at + fabric_line.size() + first.size() + 1);
    text.insert(at + fabric_line.size(), "\n" + second);
    text.replace(text.find("A800 = 1500"), 11, "A800 = " + a800_price);
    return Parse(text);
  };
  auto before = with_offers("offer = \"spare\"", "offer = \"dedicated\"", "1500");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->registration.nodes(0).offer(), v1::CAPACITY_OFFER_SPARE);
  // The operator reclaims node-1 and raises the A800 price.
  auto after = with_offers("offer = \"withdrawn\"", "offer = \"dedicated\"", "1800");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  auto update = OfferChanges(before->registration, after->registration);
  ASSERT_TRUE(update.ok()) << update.status().ToString();
  ASSERT_EQ(update->nodes_size(), 1);
  EXPECT_EQ(update->nodes(0).node(), "node-1");
  EXPECT_EQ(update->nodes(0).offer(), v1::CAPACITY_OFFER_WITHDRAWN);
  ASSERT_EQ(update->prices_size(), 2);
  EXPECT_EQ(update->prices(0).per_card_hour(), 1800);
  auto same = OfferChanges(before->registration, before->registration);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->nodes_size() + same->prices_size(), 0);
  // Changing the cards needs a restart, not an UpdateOffer.
  v1::RegisterProvider more_cards = after->registration;
  more_cards.mutable_nodes(1)->mutable_accelerators(0)->set_count(3);
  EXPECT_EQ(OfferChanges(before->registration, more_cards).status().code(),
            StatusCode::kFailedPrecondition);
  ExpectInvalid(FullConfig().replace(FullConfig().find("fabric = \"ib-1\""), 15,
                                     "offer = \"lent\""),
                "'offer' must be");
}

TEST_F(SiteConfigTest, ShippedExampleParsesAndTheCatalogKnowsItsCards) {
  auto text = ReadFileToString(COMPUTENET_SOURCE_DIR "/examples/site.toml",
                               1 << 20);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto config = Parse(*text);  // its broker_identity resolves in dir_
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->registration.nodes(1).offer(), v1::CAPACITY_OFFER_SPARE);
  EXPECT_TRUE(matching::AcceleratorCatalog::BuiltIn()
                  ->CheckRegistration(config->registration)
                  .ok());
}

TEST_F(SiteConfigTest, UnknownKeyInAcceleratorIsNamed) {
  std::string text = FullConfig();
  const std::string from = "count = 4 }";
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), "count = 4, vendr = \"x\" }");
  auto config = Parse(text);
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("nodes[1].accelerators[1]"));
  EXPECT_THAT(config.status().message(), HasSubstr("'vendr'"));
}

TEST_F(SiteConfigTest, MissingPricesIsInvalid) {
  ExpectInvalid(Header("broker_identity = \"keys/broker/identity.pub\"") +
                    kNodes,
                "[prices]");
}

TEST_F(SiteConfigTest, NegativePriceIsInvalid) {
  ExpectInvalid(Header("broker_identity = \"keys/broker/identity.pub\"") +
                    "[prices]\nA800 = -1\n" + kNodes,
                "prices.A800");
}

TEST_F(SiteConfigTest, NonIntegerPriceIsInvalid) {
  ExpectInvalid(Header("broker_identity = \"keys/broker/identity.pub\"") +
                    "[prices]\nA800 = 15.5\n" + kNodes,
                "prices.A800");
  ExpectInvalid(Header("broker_identity = \"keys/broker/identity.pub\"") +
                    "[prices]\nA800 = \"1500\"\n" + kNodes,
                "prices.A800");
}

TEST_F(SiteConfigTest, BadTomlSyntaxIsInvalid) {
  auto config = Parse(FullConfig() + "\nsite = \"unterminated\n");
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("line"));
  EXPECT_EQ(Parse("this is = = not toml").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SiteConfigTest, DuplicateKeyIsInvalid) {
  EXPECT_EQ(Parse("site = \"again\"\n" + FullConfig()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SiteConfigTest, MissingRequiredKeysAreNamed) {
  for (const std::string key :
       {"broker_endpoint", "identity_dir", "work_dir", "site", "region",
        "currency"}) {
    std::string text = FullConfig();
    const size_t at = text.find(key + " = ");
    ASSERT_NE(at, std::string::npos) << key;
    text.erase(at, text.find('\n', at) - at + 1);
    ExpectInvalid(text, "'" + key + "'");
  }
}

TEST_F(SiteConfigTest, NodesAreRequired) {
  ExpectInvalid(Header("broker_identity = \"keys/broker/identity.pub\"") +
                    kPrices,
                "[[nodes]]");
}

TEST_F(SiteConfigTest, NodeNeedsNameAndAccelerators) {
  const std::string head =
      Header("broker_identity = \"keys/broker/identity.pub\"") + kPrices;
  ExpectInvalid(head + "[[nodes]]\nfabric = \"f\"\naccelerators = []\n",
                "'name'");
  ExpectInvalid(head + "[[nodes]]\nname = \"n\"\n", "accelerators");
}

TEST_F(SiteConfigTest, AcceleratorCountMustBePositive) {
  const std::string head =
      Header("broker_identity = \"keys/broker/identity.pub\"") + kPrices;
  ExpectInvalid(head +
                    "[[nodes]]\nname = \"n\"\n"
                    "accelerators = [ { model = \"A800\", count = 0 } ]\n",
                "'count'");
  ExpectInvalid(head +
                    "[[nodes]]\nname = \"n\"\n"
                    "accelerators = [ { model = \"A800\" } ]\n",
                "'count'");
}

TEST_F(SiteConfigTest, OutOfRangeCountIsNotSilentlyTruncated) {
  // 2^32 + 1 cards would wrap to 1 card in the uint32 count.
  const std::string head =
      Header("broker_identity = \"keys/broker/identity.pub\"") + kPrices;
  auto config =
      Parse(head +
            "[[nodes]]\nname = \"n\"\n"
            "accelerators = [ { model = \"A800\", count = 4294967297 } ]\n");
  if (config.ok()) {
    ADD_FAILURE() << "count 4294967297 was accepted as "
                  << config->registration.nodes(0).accelerators(0).count();
  } else {
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(config.status().message(), HasSubstr("count"));
  }
}

}  // namespace
}  // namespace computenet::provider
