// AcceleratorCatalog: the shipped catalog parses and says what it should;
// bad catalogs are refused with the entry named; nominal, measured and
// unverified figures resolve as documented. Provider track records score
// as documented.
#include "computenet/matching/accelerator_catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "computenet/matching/provider_stats.h"
#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::HasSubstr;

constexpr char kTiny[] = R"(
reference = "A100"
[[accelerator]]
model = "A100"
vendor = "NVIDIA"
class = "nvidia"
memory_gib = 80
fp16_dense_tflops = 312.0
fp32_tflops = 19.5
source = "datasheet"
)";

TEST(AcceleratorCatalogTest, BuiltInCatalogIsTheShippedFile) {
  auto built_in = AcceleratorCatalog::BuiltIn();
  ASSERT_NE(built_in, nullptr);
  EXPECT_EQ(built_in->reference().model, "A100");
  EXPECT_EQ(built_in->reference_gflops(), 312000u);
  // The file next to the sources parses to the same catalog.
  auto file = AcceleratorCatalog::Load(COMPUTENET_SOURCE_DIR
                                       "/matching/catalog/accelerators.toml");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->entries().size(), built_in->entries().size());
  // Every family the network serves is there, each with a source.
  for (const char* model : {"V100", "A100", "A800", "H100", "H800", "H20", "L20",
                            "L40S", "T4", "A10", "P100", "910B", "R200", "T20",
                            "Z100", "MI300X", "H200", "B200", "L2", "910C",
                            "MLU370", "MLU590"}) {
    const AcceleratorSpec* spec = built_in->Find(model);
    ASSERT_NE(spec, nullptr) << model;
    EXPECT_FALSE(spec->source.empty()) << model;
    EXPECT_GT(spec->dense_gflops, 0u) << model;
  }
  EXPECT_EQ(built_in->Find("910B")->vendor_class, "domestic");
  for (const char* model : {"910C", "MLU370", "MLU590"}) {
    EXPECT_EQ(built_in->Find(model)->vendor_class, "domestic") << model;
  }
  // Figures without a datasheet are flagged; links are there for humans.
  EXPECT_TRUE(built_in->Find("910C")->reported);
  EXPECT_TRUE(built_in->Find("H20")->reported);
  EXPECT_FALSE(built_in->Find("H200")->reported);
  EXPECT_EQ(built_in->Find("H200")->dense_gflops, 989400u);
  EXPECT_EQ(built_in->Find("B200")->dense_gflops, 2250000u);
  EXPECT_EQ(built_in->Find("MLU370-X8"), built_in->Find("MLU370"));
  EXPECT_THAT(built_in->Find("H800")->interconnect, HasSubstr("400 GB/s"));
  EXPECT_EQ(built_in->Find("H800")->dense_gflops, 989400u);
  EXPECT_EQ(built_in->Find("V100M32"), built_in->Find("V100")) << "aliases";
  EXPECT_EQ(built_in->Find("G2"), nullptr);
  EXPECT_EQ(built_in->A100MilliOf(989400), 3171u);
}

TEST(AcceleratorCatalogTest, ParsesAndConvertsTflopsToGflops) {
  auto catalog = AcceleratorCatalog::Parse(kTiny, "tiny");
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ(catalog->Find("A100")->fp32_gflops, 19500u);
  EXPECT_EQ(catalog->Find("A100")->memory_mib, 80u * 1024);
}

TEST(AcceleratorCatalogTest, BadCatalogsNameTheProblem) {
  auto expect_bad = [](const std::string& text, const std::string& mentions) {
    auto catalog = AcceleratorCatalog::Parse(text, "ops.toml");
    EXPECT_EQ(catalog.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(catalog.status().message(), HasSubstr(mentions));
  };
  std::string text = kTiny;
  expect_bad("reference = \"A100\"\n", "at least one [[accelerator]]");
  expect_bad(std::string(kTiny) + "extra = 1\n", "unknown key 'extra'");
  std::string no_ref = text;
  no_ref.replace(no_ref.find("reference = \"A100\""), 18, "reference = \"B9\"");
  expect_bad(no_ref, "reference model 'B9' is not listed");
  std::string zero = text;
  zero.replace(zero.find("312.0"), 5, "0.0");
  expect_bad(zero, "fp16_dense_tflops must be positive");
  std::string typo = text;
  typo.replace(typo.find("source"), 6, "sauce");
  expect_bad(typo, "accelerator[0]: unknown key 'sauce'");
  expect_bad(text + "[[accelerator]]\nmodel = \"A100\"\nvendor = \"x\"\n"
                    "class = \"x\"\nmemory_gib = 1\nfp16_dense_tflops = 1\n"
                    "source = \"x\"\n",
             "'A100' is listed twice");
  expect_bad("not toml [", "ops.toml");
  std::string figures = text;
  figures.insert(figures.find("source"), "figures = \"rumour\"\n");
  expect_bad(figures, "'figures' is \"datasheet\" or \"reported\"");
  EXPECT_EQ(AcceleratorCatalog::Load("/nonexistent/catalog.toml").status().code(),
            StatusCode::kNotFound);
}

TEST(AcceleratorCatalogTest, ResolvesNominalMeasuredAndUnverifiedFigures) {
  auto catalog = AcceleratorCatalog::BuiltIn();
  v1::Accelerator card;
  card.set_model("910B");
  auto nominal = catalog->Resolve(card);
  ASSERT_TRUE(nominal.ok());
  EXPECT_EQ(nominal->source, FigureSource::kNominal);
  EXPECT_EQ(nominal->dense_gflops, 320000u);
  EXPECT_THAT(nominal->basis,
              HasSubstr("nominal (reported, not a datasheet): Huawei Ascend 910B"));
  card.set_model("H200");
  auto datasheet = catalog->Resolve(card);
  ASSERT_TRUE(datasheet.ok());
  EXPECT_THAT(datasheet->basis, HasSubstr("nominal: NVIDIA H200"));
  card.set_model("910B");

  card.set_measured_dense_gflops(187200);  // ~60% of an A100
  card.set_measurement("Megatron GPT-13B, 2023-10");
  card.set_vendor_class("nvidia");  // ignored for a known model
  auto measured = catalog->Resolve(card);
  ASSERT_TRUE(measured.ok());
  EXPECT_EQ(measured->source, FigureSource::kMeasured);
  EXPECT_EQ(measured->dense_gflops, 187200u);
  EXPECT_EQ(measured->vendor_class, "domestic");
  EXPECT_THAT(measured->basis, HasSubstr("Megatron GPT-13B"));

  // The override path on a card whose figure is only reported: a provider's
  // benchmark replaces it, and compute equivalence follows the measurement.
  v1::Accelerator ascend;
  ascend.set_model("Ascend910C");
  ascend.set_measured_dense_gflops(468000);
  ascend.set_measurement("vLLM Llama-70B, 2025-06");
  auto override_figure = catalog->Resolve(ascend);
  ASSERT_TRUE(override_figure.ok());
  EXPECT_EQ(override_figure->source, FigureSource::kMeasured);
  EXPECT_EQ(catalog->A100MilliOf(override_figure->dense_gflops), 1500u);

  v1::Accelerator unknown;
  unknown.set_model("G2");
  EXPECT_EQ(catalog->Resolve(unknown).status().code(),
            StatusCode::kInvalidArgument);
  unknown.set_measured_dense_gflops(100000);
  EXPECT_EQ(catalog->Resolve(unknown).status().code(),
            StatusCode::kInvalidArgument)
      << "a class is needed too";
  unknown.set_vendor_class("nvidia");
  auto unverified = catalog->Resolve(unknown);
  ASSERT_TRUE(unverified.ok());
  EXPECT_EQ(unverified->source, FigureSource::kUnverified);
  EXPECT_EQ(FigureSourceName(unverified->source), "unverified");

  v1::Accelerator absurd;
  absurd.set_model("A100");
  absurd.set_measured_dense_gflops(200'000'000);
  EXPECT_EQ(catalog->Resolve(absurd).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(AcceleratorCatalogTest, CheckRegistrationNamesTheNode) {
  v1::RegisterProvider registration = testing::MakeRegistration(
      "s", {testing::MakeNode("n7", "ib", "Mystery", 2)}, {{"Mystery", 1}});
  Status status = AcceleratorCatalog::BuiltIn()->CheckRegistration(registration);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("node n7"));
  EXPECT_THAT(status.message(), HasSubstr("'Mystery'"));
}

TEST(ProviderStatsTest, ReliabilityFollowsTheRuleOfSuccession) {
  ProviderStats stats;
  EXPECT_EQ(ReliabilityPermille(stats), 500u) << "no history";
  for (int i = 0; i < 98; ++i) stats = WithEvent(stats, ProviderEvent::kCompleted);
  EXPECT_EQ(ReliabilityPermille(stats), 990u);  // 99 / 100
  stats = WithEvent(stats, ProviderEvent::kProviderFailure);
  stats = WithEvent(stats, ProviderEvent::kHeartbeatLoss);
  EXPECT_EQ(stats.provider_failures, 1u);
  EXPECT_EQ(stats.heartbeat_losses, 1u);
  EXPECT_EQ(ReliabilityPermille(stats), 970u);  // 99 / 102
  ProviderStats flaky;
  flaky.provider_failures = 8;
  EXPECT_EQ(ReliabilityPermille(flaky), 100u);  // 1 / 10
}

}  // namespace
}  // namespace computenet::matching
