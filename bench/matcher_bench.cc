// Google Benchmark of the broker's matcher and queue on synthetic national-
// scale capacity: 1,000 to 100,000 nodes (8 cards each, 10 nodes per
// provider, so up to 10,000 providers), a mix of 13 accelerator models, 8
// regions, fabrics of up to 8 nodes, a tenth of providers with spare nodes.
// The request mix: single-node whole cards (60%), fractional shares (15%),
// compute equivalence (10%), gangs of 2-4 nodes (5%), domestic-only or
// region-restricted jobs (10%).
//
//   build/bench/matcher_bench [--benchmark_filter=...]
//   short form (the test command): --benchmark_filter='/1000(/|$)'
//   --benchmark_min_time=0.01; exits non-zero when no benchmark ran.
//
// BM_Match*: one decision on an index half full (or full), nothing taken.
// BM_PlaceRelease: a decision, its allocation, and releasing an older job.
// BM_QueuePass/nodes/jobs/fill%: one JobQueue pass over N queued jobs
// (100,000 jobs on 100,000 nodes / 10,000 providers is the headline figure),
// on an empty index and on one 90% taken, where most jobs must wait.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "computenet/matching/capacity_index.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"

namespace {

using computenet::FakeClock;
namespace matching = computenet::matching;
namespace v1 = computenet::v1;

const std::vector<std::string>& Models() {
  static const std::vector<std::string> models = {
      "A800", "H800", "A100", "H100", "910B", "L40S", "T4",
      "V100", "A10",  "H20",  "L20",  "R200", "T20"};
  return models;
}

v1::RegisterProvider MakeProvider(int id, int nodes, std::mt19937_64& rng) {
  const auto& catalog = *matching::AcceleratorCatalog::BuiltIn();
  v1::RegisterProvider registration;
  registration.set_site("site-" + std::to_string(id));
  registration.set_region("region-" + std::to_string(id % 8));
  registration.set_currency("CNY");
  const std::string first = Models()[static_cast<size_t>(id) % Models().size()];
  const std::string second =
      Models()[static_cast<size_t>(id * 7 + 3) % Models().size()];
  std::uniform_int_distribution<int> spread(80, 120);
  for (const auto& model : {first, second}) {
    if (model == second && model == first) continue;
    // About 1,500 per A100-equivalent-hour, +-20% per provider.
    const int64_t base = static_cast<int64_t>(
        catalog.Find(model)->dense_gflops * 1500 / catalog.reference_gflops());
    auto* price = registration.add_prices();
    price->set_model(model);
    price->set_per_card_hour(std::max<int64_t>(50, base * spread(rng) / 100));
    price->set_spare_per_card_hour(price->per_card_hour() * 6 / 10);
  }
  const bool has_spare = id % 10 == 0;
  for (int n = 0; n < nodes; ++n) {
    v1::Node* node = registration.add_nodes();
    node->set_name("n" + std::to_string(n));
    node->set_fabric_id("fabric-" + std::to_string(n / 8));
    node->set_cpu_cores(96);
    node->set_memory_mib(1024 * 1024);
    if (has_spare && n % 2 == 1) node->set_offer(v1::CAPACITY_OFFER_SPARE);
    auto* card = node->add_accelerators();
    card->set_model(n % 2 == 0 ? first : second);
    card->set_memory_mib(catalog.Find(card->model())->memory_mib);
    card->set_count(8);
  }
  return registration;
}

// Request kinds, by the first percentile of the mix they start at.
enum Kind { kMix = -1, kWhole = 0, kShare = 60, kCompute = 75, kGang = 85,
            kDomestic = 90, kRegion = 95 };

v1::JobSpec MakeJob(std::mt19937_64& rng, int only = kMix) {
  v1::JobSpec spec;
  spec.add_command("bench");
  spec.set_max_duration_s(3600);
  std::uniform_int_distribution<int> pick(0, 99);
  const int kind = only == kMix ? pick(rng) : only;
  if (kind < 60) {
    const uint32_t cards[] = {1, 1, 2, 4, 8};
    spec.set_cards_per_node(cards[pick(rng) % 5]);
    if (pick(rng) < 30) {
      spec.add_accelerator_models(Models()[static_cast<size_t>(pick(rng)) % Models().size()]);
      spec.add_accelerator_models(Models()[static_cast<size_t>(pick(rng)) % Models().size()]);
    }
  } else if (kind < 75) {
    spec.set_gpu_milli(pick(rng) < 50 ? 250 : 500);
  } else if (kind < 85) {
    spec.set_a100_equivalents_milli(static_cast<uint32_t>(1000 + 1000 * (pick(rng) % 16)));
  } else if (kind < 90) {
    spec.set_cards_per_node(8);
    spec.set_nodes(static_cast<uint32_t>(2 + pick(rng) % 3));
  } else if (kind < 95) {
    spec.set_cards_per_node(static_cast<uint32_t>(1 + pick(rng) % 4));
    spec.add_vendor_classes("domestic");
  } else {
    spec.set_cards_per_node(static_cast<uint32_t>(1 + pick(rng) % 4));
    spec.add_allowed_regions("region-" + std::to_string(pick(rng) % 8));
  }
  if (pick(rng) < 20) spec.set_preemptible(true);
  return spec;
}

struct Fixture {
  matching::CapacityIndex index;
  std::vector<matching::PlacementRequest> requests;
  // The request mix as the queue would learn it (for packing by workload).
  matching::WorkloadSummary workload;
  int providers = 0;
};

std::unique_ptr<Fixture> Build(int nodes, double fill) {
  auto fixture = std::make_unique<Fixture>();
  std::mt19937_64 rng(42);
  const int per_provider = 10;
  fixture->providers = std::max(1, nodes / per_provider);
  {
    matching::CapacityIndex::BulkUpdate bulk(fixture->index);
    for (int p = 0; p < fixture->providers; ++p) {
      const std::string name = "p" + std::to_string(p);
      (void)fixture->index.UpsertProvider(name, MakeProvider(p, per_provider, rng));
      fixture->index.SetOnline(name, true);
    }
  }
  for (int i = 0; i < 4096; ++i) {
    fixture->requests.push_back(matching::PlacementRequest::FromSpec(MakeJob(rng)));
    fixture->workload.Observe(fixture->requests.back());
  }
  // Fill to the asked fraction of cards with the same mix.
  matching::PlacementMatcher matcher;
  const auto totals = fixture->index.Totals();
  const uint64_t target = static_cast<uint64_t>(
      static_cast<double>(totals.cards) * 1000 * fill);
  // Totals() scans every node: count what is taken here instead.
  uint64_t allocated = 0;
  uint64_t misses = 0;
  for (uint64_t job = 0; allocated < target && misses < 20000; ++job) {
    const auto& request = fixture->requests[job % fixture->requests.size()];
    auto placement = matcher.Match(request, fixture->index, {});
    if (!placement) {
      ++misses;
      continue;
    }
    (void)fixture->index.Allocate(
        "fill-" + std::to_string(job),
        matching::JobAllocation{placement->provider, placement->assignments});
    for (const auto& assignment : placement->assignments) {
      allocated += static_cast<uint64_t>(assignment.device_indices_size()) *
                   (assignment.milli() == 0 ? 1000 : assignment.milli());
    }
  }
  return fixture;
}

Fixture& Cached(int nodes, int fill_percent) {
  static std::map<std::pair<int, int>, std::unique_ptr<Fixture>> cache;
  auto& slot = cache[{nodes, fill_percent}];
  if (!slot) slot = Build(nodes, fill_percent / 100.0);
  return *slot;
}

void Label(benchmark::State& state, const Fixture& fixture) {
  state.SetLabel(std::to_string(fixture.providers) + " providers");
  state.counters["decisions/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// One decision on a half-full index; nothing is taken. Second argument 1:
// packing by the workload summary (the queue's default), 0: best fit.
void BM_Match(benchmark::State& state) {
  Fixture& fixture = Cached(static_cast<int>(state.range(0)), 50);
  matching::PlacementMatcher matcher;
  matching::MatchContext context;
  if (state.range(1) != 0) context.workload = &fixture.workload;
  size_t i = 0;
  uint64_t placed = 0;
  for (auto _ : state) {
    auto placement = matcher.Match(
        fixture.requests[i++ % fixture.requests.size()], fixture.index, context);
    placed += placement.has_value();
    benchmark::DoNotOptimize(placement);
  }
  Label(state, fixture);
  state.counters["placeable"] = static_cast<double>(placed) /
                                static_cast<double>(state.iterations());
}
BENCHMARK(BM_Match)->ArgsProduct({{1'000, 10'000, 100'000}, {0, 1}});

// One request form at a time, on the same half-full index (third
// argument: packing by workload or not, as BM_Match).
void BM_MatchForm(benchmark::State& state) {
  Fixture& fixture = Cached(static_cast<int>(state.range(1)), 50);
  matching::MatchContext context;
  if (state.range(2) != 0) context.workload = &fixture.workload;
  std::mt19937_64 rng(99);
  std::vector<matching::PlacementRequest> requests;
  for (int i = 0; i < 1024; ++i) {
    requests.push_back(matching::PlacementRequest::FromSpec(
        MakeJob(rng, static_cast<int>(state.range(0)))));
  }
  matching::PlacementMatcher matcher;
  size_t i = 0;
  uint64_t placed = 0;
  for (auto _ : state) {
    auto placement = matcher.Match(requests[i++ % requests.size()],
                                   fixture.index, context);
    placed += placement.has_value();
    benchmark::DoNotOptimize(placement);
  }
  const char* names[] = {"whole", "share", "compute", "gang", "domestic", "region"};
  const int kinds[] = {kWhole, kShare, kCompute, kGang, kDomestic, kRegion};
  for (int k = 0; k < 6; ++k) {
    if (kinds[k] == state.range(0)) state.SetLabel(names[k]);
  }
  state.counters["decisions/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["placeable"] = static_cast<double>(placed) /
                                static_cast<double>(state.iterations());
}
BENCHMARK(BM_MatchForm)
    ->ArgsProduct({{kWhole, kShare, kCompute, kGang, kDomestic, kRegion},
                   {1'000, 100'000}, {0, 1}});

// Decisions on a full index: the ones that must say "nothing fits".
void BM_MatchFull(benchmark::State& state) {
  Fixture& fixture = Cached(static_cast<int>(state.range(0)), 100);
  matching::PlacementMatcher matcher;
  matching::MatchContext context;
  if (state.range(1) != 0) context.workload = &fixture.workload;
  size_t i = 0;
  for (auto _ : state) {
    auto placement = matcher.Match(
        fixture.requests[i++ % fixture.requests.size()], fixture.index, context);
    benchmark::DoNotOptimize(placement);
  }
  Label(state, fixture);
}
BENCHMARK(BM_MatchFull)->ArgsProduct({{1'000, 10'000, 100'000}, {0, 1}});

// Steady state: place a job, release the oldest, as a broker does.
void BM_PlaceRelease(benchmark::State& state) {
  Fixture& fixture = Cached(static_cast<int>(state.range(0)), 50);
  matching::PlacementMatcher matcher;
  matching::MatchContext context;
  context.workload = &fixture.workload;
  std::deque<std::string> held;
  size_t i = 0;
  for (auto _ : state) {
    const auto& request = fixture.requests[i % fixture.requests.size()];
    const std::string id = "steady-" + std::to_string(i++);
    if (auto placement = matcher.Match(request, fixture.index, context)) {
      (void)fixture.index.Allocate(
          id, matching::JobAllocation{placement->provider, placement->assignments});
      held.push_back(id);
    }
    if (held.size() > 256) {
      fixture.index.Release(held.front());
      held.pop_front();
    }
  }
  for (const auto& id : held) fixture.index.Release(id);
  Label(state, fixture);
}
BENCHMARK(BM_PlaceRelease)->Arg(1'000)->Arg(10'000)->Arg(100'000);

// One queue pass over `jobs` queued jobs on an index of `nodes` that is
// `fill` percent taken already (0: most jobs are placed; 90: most wait, with
// a reservation for the first blocked job and backfill around it), packing
// by the workload the queue learned from them (the default).
void BM_QueuePass(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  const int jobs = static_cast<int>(state.range(1));
  const double fill = static_cast<double>(state.range(2)) / 100.0;
  uint64_t placed = 0;
  uint64_t decisions = 0;
  int providers = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto fixture = Build(nodes, fill);
    providers = fixture->providers;
    auto clock = std::make_shared<FakeClock>();
    matching::JobQueue queue(matching::JobQueueOptions{}, clock);
    std::mt19937_64 rng(7);
    for (int j = 0; j < jobs; ++j) {
      matching::QueuedJob job;
      job.job_id = "job-" + std::to_string(j);
      job.organization = "org-" + std::to_string(j % 50);
      job.priority = static_cast<v1::PriorityClass>(1 + j % 3);
      job.submitted_ms = clock->NowMs();
      job.sequence = static_cast<uint64_t>(j);
      v1::JobSpec spec = MakeJob(rng);
      job.request = matching::PlacementRequest::FromSpec(spec);
      job.max_duration_s = spec.max_duration_s() / 2 + static_cast<uint32_t>(j % 1800);
      (void)queue.Add(std::move(job));
    }
    matching::PlacementMatcher matcher;
    state.ResumeTiming();
    auto pass = queue.Schedule(fixture->index, matcher);
    state.PauseTiming();
    placed += pass.placed.size();
    decisions += pass.placed.size() + pass.waiting.size() + pass.never_fit.size();
    fixture.reset();
    state.ResumeTiming();
  }
  state.SetLabel(std::to_string(providers) + " providers");
  state.counters["decisions/s"] = benchmark::Counter(
      static_cast<double>(decisions), benchmark::Counter::kIsRate);
  state.counters["placed"] = static_cast<double>(placed) /
                             static_cast<double>(state.iterations());
}
BENCHMARK(BM_QueuePass)
    ->Args({1'000, 1'000, 0})
    ->Args({10'000, 10'000, 0})
    ->Args({100'000, 100'000, 0})
    ->Args({1'000, 1'000, 90})
    ->Args({10'000, 10'000, 90})
    ->Args({100'000, 100'000, 90})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace

// BENCHMARK_MAIN, but a run that measured nothing (a filter that matches no
// benchmark) fails, so the short form in the test command cannot rot.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const size_t ran = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (ran == 0) {
    std::fprintf(stderr, "matcher_bench: no benchmark ran (check "
                         "--benchmark_filter)\n");
    return 1;
  }
  return 0;
}
