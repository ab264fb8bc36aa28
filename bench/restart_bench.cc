// restart_bench: how long a broker takes to serve again after a restart
// with a large database (issue 10's target: 1,000,000 jobs, back to serving
// in < 5 s).
//
// It fills a broker database through the broker's own Store (jobs mostly
// ended, some queued, some running on registered providers, as a broker
// that has run for a while would hold), then, several times, starts the real
// `computenet-broker run` on it as a child process and measures:
//   bound:   spawn -> the endpoint file is written (Init done: migrations,
//            queue and allocations loaded, stale holds released, socket bound);
//   serving: spawn -> a consumer's GetJob over CURVE is answered.
// and the broker's RSS once serving. The first run follows the fill (the
// file is in the page cache, as after a process restart; a machine reboot
// would read it from disk).
//
// Usage: restart_bench [--jobs N] [--queued N] [--running N]
//                      [--providers N] [--runs N] [--drop-caches] [--short]
//                      [--keep]
// --short (ctest): 20,000 jobs, 2 runs; exits 1 if nothing was measured.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "broker_process.h"
#include "computenet/common/identity.h"
#include "computenet/consumer/client.h"
#include "computenet/ledger/ledger.h"
#include "jobs/store.h"

namespace computenet {
namespace {

using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Plan {
  int64_t jobs = 1'000'000;
  int64_t queued = 10'000;
  int64_t running = 1'000;
  int providers = 100;
};

v1::RegisterProvider Registration(const std::string& site) {
  v1::RegisterProvider registration;
  registration.set_site(site);
  registration.set_region("default");
  registration.set_currency("CNY");
  auto* node = registration.add_nodes();
  node->set_name("n1");
  node->set_fabric_id("ib-1");
  auto* accelerators = node->add_accelerators();
  accelerators->set_model("A800");
  accelerators->set_memory_mib(81920);
  accelerators->set_count(16);
  auto* price = registration.add_prices();
  price->set_model("A800");
  price->set_per_card_hour(1500);
  return registration;
}

// Fills db_path: providers enrolled and registered, one funded consumer, and
// plan.jobs jobs (queued, running, the rest succeeded) in batches.
Status Fill(const std::string& db_path, const Plan& plan,
            const Identity& consumer, const Identity& site_key,
            std::string* queued_job) {
  CN_ASSIGN_OR_RETURN(
      auto store, broker::Store::Open(db_path, storage::DatabaseOptions{
                                                   storage::Durability::kOff}));
  const int64_t now = WallMs();
  Status enrolled = store->database().RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(
        store->Enroll(broker::Role::kConsumer, consumer.Public(), now));
    for (int p = 0; p < plan.providers; ++p) {
      PublicIdentity provider = site_key.Public();
      provider.name = "site-" + std::to_string(p);
      // Keys must differ per enrolment; only the registration matters here.
      CN_ASSIGN_OR_RETURN(auto keys, CurveKeyPair::Generate());
      provider.curve_public = keys.public_z85;
      CN_RETURN_IF_ERROR(store->Enroll(broker::Role::kProvider, provider, now));
      CN_RETURN_IF_ERROR(store->SaveProviderRegistration(
          provider.name, Registration(provider.name), now));
    }
    return OkStatus();
  });
  CN_RETURN_IF_ERROR(enrolled);
  ledger::Ledger ledger(store->database());
  CN_RETURN_IF_ERROR(
      ledger.TopUp(consumer.name(), 1'000'000'000, "fill", "restart_bench", now)
          .status());
  constexpr int64_t kBatch = 10'000;
  for (int64_t first = 0; first < plan.jobs; first += kBatch) {
    CN_RETURN_IF_ERROR(store->database().BeginBatch());
    for (int64_t i = first; i < std::min(plan.jobs, first + kBatch); ++i) {
      v1::JobInfo job;
      job.set_consumer(consumer.name());
      job.set_organization(consumer.name());
      job.set_created_ms(now - (plan.jobs - i));
      auto* spec = job.mutable_spec();
      spec->add_command("/bin/true");
      spec->set_cards_per_node(1);
      spec->set_max_duration_s(60);
      if (i < plan.queued) {
        job.set_state(v1::JOB_STATE_QUEUED);
        job.set_reason("waiting to be matched");
      } else if (i < plan.queued + plan.running) {
        const int64_t k = i - plan.queued;
        job.set_state(v1::JOB_STATE_RUNNING);
        job.set_provider("site-" + std::to_string(k % plan.providers));
        job.set_model("A800");
        auto* assignment = job.add_assignments();
        assignment->set_node("n1");
        assignment->add_device_indices(
            static_cast<uint32_t>((k / plan.providers) % 16));
        job.set_price_per_card_hour(1500);
        job.set_currency("CNY");
        job.set_attempts(1);
        job.set_started_ms(now - 1000);
      } else {
        job.set_state(v1::JOB_STATE_SUCCEEDED);
        job.set_provider("site-" + std::to_string(i % plan.providers));
        job.set_model("A800");
        job.set_attempts(1);
        job.set_exit_code(0);
        job.set_card_seconds(1);
        job.set_charged(1);
        job.set_finished_ms(now - (plan.jobs - i) + 1);
      }
      bool duplicate = false;
      CN_ASSIGN_OR_RETURN(
          auto stored, store->InsertJob("rb", std::move(job), "", &duplicate));
      if (i == 0) *queued_job = stored.job_id();
    }
    CN_RETURN_IF_ERROR(store->database().CommitBatch());
  }
  return OkStatus();
}

struct RunResult {
  double bound_s = 0;
  double serving_s = 0;
  int64_t rss_kib = 0;
};

StatusOr<RunResult> RestartOnce(const std::string& work_dir,
                                const std::string& broker_binary,
                                const Identity& broker_identity,
                                const Identity& consumer,
                                const std::string& job_id) {
  loadgen::BrokerProcessOptions options;
  options.binary = broker_binary;
  options.work_dir = work_dir;
  options.db_path = work_dir + "/broker.db";
  options.keys_dir = work_dir + "/broker-keys";
  options.broker_id = "rb";
  options.log_level = "info";
  const auto spawned = SteadyClock::now();
  CN_ASSIGN_OR_RETURN(auto broker,
                      loadgen::BrokerProcess::Start(options, 120'000));
  RunResult result;
  result.bound_s = SecondsSince(spawned);
  consumer::ClientOptions client_options;
  client_options.broker_endpoint = broker->endpoint();
  client_options.broker_public_key = broker_identity.curve().public_z85;
  client_options.request_timeout_ms = 60'000;
  client_options.retries = 0;
  CN_ASSIGN_OR_RETURN(auto client,
                      consumer::Client::Connect(client_options, consumer));
  CN_ASSIGN_OR_RETURN(auto job, client->GetJob(job_id));
  result.serving_s = SecondsSince(spawned);
  if (job.state() != v1::JOB_STATE_QUEUED) {
    return InternalError("job " + job_id + " is " +
                         v1::JobState_Name(job.state()) + ", not QUEUED");
  }
  CN_ASSIGN_OR_RETURN(auto sample, broker->Sample());
  result.rss_kib = sample.rss_kib;
  if (broker->CountInLog("loaded ") == 0) {
    return InternalError("the broker's log has no 'loaded' line: " +
                         broker->LogTail(5));
  }
  const std::string how = broker->Stop(10'000);
  (void)how;
  return result;
}

int Main(int argc, char** argv) {
  CLI::App app{"restart_bench: broker restart time with a large database"};
  Plan plan;
  int runs = 3;
  bool short_form = false;
  bool keep = false;
  bool drop_caches = false;
  std::string broker_binary = COMPUTENET_BROKER_BIN;
  std::string tmp_dir = "/tmp";
  app.add_option("--jobs", plan.jobs, "jobs in the database");
  app.add_option("--queued", plan.queued, "of them QUEUED");
  app.add_option("--running", plan.running, "of them RUNNING on providers");
  app.add_option("--providers", plan.providers, "registered providers");
  app.add_option("--runs", runs, "restarts measured");
  app.add_option("--broker", broker_binary, "computenet-broker binary");
  app.add_option("--tmp-dir", tmp_dir, "where the database goes");
  app.add_flag("--short", short_form, "20,000 jobs, 2 runs (ctest)");
  app.add_flag("--keep", keep, "keep the work directory");
  app.add_flag("--drop-caches", drop_caches,
               "before each run, drop the page cache (root): the file is "
               "read from disk, as after a reboot");
  CLI11_PARSE(app, argc, argv);
  if (short_form) {
    plan = Plan{20'000, 500, 100, 10};
    runs = 2;
  }
  if (plan.jobs < 1 || plan.queued < 1 || plan.providers < 1 ||
      plan.queued + plan.running > plan.jobs || runs < 1) {
    std::fprintf(stderr,
                 "restart_bench: need jobs >= queued + running, "
                 "queued >= 1, providers >= 1, runs >= 1\n");
    return 2;
  }
  std::string pattern = tmp_dir + "/computenet-restart-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string work_dir = pattern;
  auto broker_identity = Identity::Generate("rb");
  auto consumer = Identity::Generate("alice");
  auto site_key = Identity::Generate("site");
  if (!broker_identity.ok() || !consumer.ok() || !site_key.ok()) {
    std::fprintf(stderr, "restart_bench: key generation failed\n");
    return 1;
  }
  Status saved = broker_identity->Save(work_dir + "/broker-keys");
  int rc = 0;
  std::string queued_job;
  const auto fill_start = SteadyClock::now();
  Status filled = saved.ok() ? Fill(work_dir + "/broker.db", plan, *consumer,
                                    *site_key, &queued_job)
                             : saved;
  if (!filled.ok()) {
    std::fprintf(stderr, "restart_bench: fill: %s\n",
                 filled.ToString().c_str());
    rc = 1;
  } else {
    std::error_code ignored;
    const auto bytes =
        std::filesystem::file_size(work_dir + "/broker.db", ignored);
    std::printf(
        "database: %lld jobs (%lld queued, %lld running on %d "
        "providers, the rest succeeded), %.1f MiB, filled in %.1f s\n",
        static_cast<long long>(plan.jobs), static_cast<long long>(plan.queued),
        static_cast<long long>(plan.running), plan.providers,
        static_cast<double>(bytes) / (1024.0 * 1024.0),
        SecondsSince(fill_start));
    std::printf("%4s %10s %10s %9s\n", "run", "bound_s", "serving_s",
                "rss_MiB");
    int measured = 0;
    for (int run = 1; run <= runs; ++run) {
      if (drop_caches) {
        ::sync();
        std::ofstream drop("/proc/sys/vm/drop_caches");
        drop << "3\n";
        if (!drop.flush()) {
          std::fprintf(stderr, "restart_bench: cannot drop caches (root?)\n");
        }
      }
      auto result = RestartOnce(work_dir, broker_binary, *broker_identity,
                                *consumer, queued_job);
      if (!result.ok()) {
        std::fprintf(stderr, "restart_bench: run %d: %s\n", run,
                     result.status().ToString().c_str());
        rc = 1;
        break;
      }
      ++measured;
      std::printf("%4d %10.3f %10.3f %9.1f\n", run, result->bound_s,
                  result->serving_s,
                  static_cast<double>(result->rss_kib) / 1024.0);
      std::fflush(stdout);
    }
    if (measured == 0) rc = 1;
  }
  if (keep) {
    std::printf("kept %s\n", work_dir.c_str());
  } else {
    std::error_code ignored;
    std::filesystem::remove_all(work_dir, ignored);
  }
  return rc;
}

}  // namespace
}  // namespace computenet

int main(int argc, char** argv) { return computenet::Main(argc, argv); }
