// settlement_bench: how fast the broker settles signed usage records, end to
// end, next to the cost of Ed25519 verification alone measured in the same
// run (the limit: shared/notes/limits.md says verification is ~94% of
// ingest). Also: the offline audit, checkpoint signing and entry proofs.
//
// Settling one record is what OnUsageReport does: decode the UsageReport,
// find the provider's enrolled key, verify the signature, load the job,
// then in one SQLite transaction (WAL, synchronous=FULL) store the record,
// post it against the job's hold (cumulative rule, fee split, hash chain,
// balances) and update the job. "per record" commits each record on its
// own, as the broker does today; "batched" commits 100 records per
// transaction (group commit), the path the broker could take.
//
//   settlement_bench [--records N=4000] [--repeats R=3] [--short]
//
// --short: 200 records, one run (the test command's form). Exits non-zero
// when it measured nothing (no record settled or a rate of zero).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/checkpoints.h"
#include "jobs/store.h"
#include "computenet/common/checkpoint.h"
#include "computenet/common/identity.h"
#include "computenet/common/usage_record.h"

namespace {

using computenet::Status;
namespace broker = computenet::broker;
namespace ledger = computenet::ledger;
namespace storage = computenet::storage;
namespace v1 = computenet::v1;
using Clock = std::chrono::steady_clock;

constexpr int kRecordsPerJob = 4;  // three interim records and the closing one
constexpr int64_t kStartMs = 1'700'000'000'000;

void Check(const Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
    std::exit(1);
  }
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of this process: on a shared machine, wall time also counts
// other people's work; CPU time per record does not (fsync waits aside).
double CpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// A broker's file with jobs already placed (holds taken) and their usage
// records signed, ready to be settled.
struct Fixture {
  std::string dir;
  std::unique_ptr<broker::Store> store;
  computenet::Identity provider = *computenet::Identity::Generate("site-a");
  computenet::Identity broker_identity = *computenet::Identity::Generate("hub");
  std::vector<v1::JobInfo> jobs;
  std::vector<std::string> reports;  // serialized UsageReport bodies

  explicit Fixture(int records) {
    char pattern[] = "/tmp/settlement-bench-XXXXXX";
    dir = ::mkdtemp(pattern);
    auto opened = broker::Store::Open(dir + "/broker.db");
    Check(opened.status(), "open");
    store = std::move(*opened);
    Check(ledger::BindLedgerToBroker(store->database(), "hub",
                                     broker_identity.signing_key()
                                         .verifying_key()
                                         .hex()),
          "bind");
    Check(store->Enroll(broker::Role::kProvider, provider.Public(), 0),
          "enroll provider");
    auto alice = *computenet::Identity::Generate("alice");
    Check(store->Enroll(broker::Role::kConsumer, alice.Public(), 0),
          "enroll consumer");
    ledger::Ledger book(store->database(), ledger::LedgerOptions{"hub", 250});
    Check(book.TopUp("alice", int64_t{1} << 50, "bench", "", kStartMs).status(),
          "top up");
    const int job_count = (records + kRecordsPerJob - 1) / kRecordsPerJob;
    Check(store->database().RunInTransaction([&]() -> Status {
            for (int j = 0; j < job_count; ++j) {
              v1::JobInfo job;
              job.set_job_id("hub-" + std::to_string(j + 1));
              job.set_consumer("alice");
              job.set_state(v1::JOB_STATE_RUNNING);
              job.set_provider("site-a");
              job.set_model("A800");
              job.mutable_spec()->set_cards_per_node(8);
              job.mutable_spec()->set_max_duration_s(3600);
              auto* assignment = job.add_assignments();
              assignment->set_node("n1");
              for (uint32_t i = 0; i < 8; ++i) assignment->add_device_indices(i);
              job.set_price_per_card_hour(1500);
              job.set_currency("CNY");
              job.set_attempts(1);
              const std::string blob = job.SerializeAsString();
              SQLite::Statement insert(storage::RawConnectionForTesting(store->database()),
                                       "INSERT INTO jobs(job_id, consumer, "
                                       "state, provider, info, updated_ms) "
                                       "VALUES(?, 'alice', 3, 'site-a', ?, 0)");
              insert.bind(1, job.job_id());
              insert.bind(2, blob.data(), static_cast<int>(blob.size()));
              insert.exec();
              ledger::HoldRequest hold{job.job_id(), "alice", "site-a", "CNY",
                                       1, 8, 3600, 1500, "", "", 0};
              auto held = book.PlaceHold(hold, kStartMs);
              if (!held.ok()) return held.status();
              jobs.push_back(std::move(job));
            }
            return computenet::OkStatus();
          }),
          "place holds");
    for (int r = 0; r < records; ++r) {
      const v1::JobInfo& job = jobs[static_cast<size_t>(r / kRecordsPerJob)];
      const int index = r % kRecordsPerJob;
      v1::UsageRecord record;
      const bool closes = index == kRecordsPerJob - 1;
      record.set_record_id(job.job_id() + (closes ? std::string(":final")
                                                  : ":" + std::to_string(index + 1)));
      record.set_job_id(job.job_id());
      record.set_provider("site-a");
      record.set_model("A800");
      record.set_cards(8);
      record.set_start_ms(kStartMs + index * 300'000);
      record.set_end_ms(kStartMs + (index + 1) * 300'000 - (closes ? 123'456 : 0));
      record.set_card_seconds(computenet::CardSecondsFor(8, record.start_ms(),
                                                         record.end_ms()));
      record.set_closes_job(closes);
      auto report = computenet::SignUsageRecord(provider.signing_key(), record);
      Check(report.status(), "sign");
      reports.push_back(report->SerializeAsString());
    }
  }
  ~Fixture() {
    store.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

// Settles reports[begin, end) the way OnUsageReport does, committing every
// `batch` records.
void Settle(Fixture& fixture, ledger::Ledger& book, size_t batch) {
  const size_t n = fixture.reports.size();
  for (size_t begin = 0; begin < n; begin += batch) {
    const size_t end = std::min(n, begin + batch);
    Check(fixture.store->database().RunInTransaction([&]() -> Status {
            for (size_t i = begin; i < end; ++i) {
              v1::UsageReport report;
              if (!report.ParseFromString(fixture.reports[i])) {
                return computenet::InvalidArgumentError("report");
              }
              CN_ASSIGN_OR_RETURN(auto enrollment,
                                  fixture.store->FindEnrollment(
                                      broker::Role::kProvider, "site-a"));
              CN_ASSIGN_OR_RETURN(
                  v1::UsageRecord record,
                  computenet::VerifyUsageRecord(enrollment->ed25519_public,
                                                report.record(),
                                                report.signature()));
              CN_ASSIGN_OR_RETURN(v1::JobInfo job,
                                  fixture.store->GetJob(record.job_id()));
              CN_ASSIGN_OR_RETURN(
                  auto posted,
                  book.PostUsage(job,
                                   ledger::StoredUsageRecord{
                                       "site-a", record.record_id(),
                                       job.job_id(), report.record(),
                                       report.signature()},
                                   record, kStartMs));
              job.set_card_seconds(posted.cumulative_card_seconds);
              job.set_charged(posted.job_charged);
              CN_RETURN_IF_ERROR(fixture.store->UpdateJob(job, kStartMs));
            }
            return computenet::OkStatus();
          }),
          "settle");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int records = 4000;
  int repeats = 3;
  bool usage_error = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--short") {
      records = 200;
      repeats = 1;
    } else if (flag == "--records" && i + 1 < argc) {
      records = std::atoi(argv[++i]);
    } else if (flag == "--repeats" && i + 1 < argc) {
      repeats = std::atoi(argv[++i]);
    } else {
      usage_error = true;
    }
  }
  if (usage_error || records < kRecordsPerJob || repeats < 1) {
    std::fprintf(stderr, "usage: settlement_bench [--records N>=4] "
                         "[--repeats R>=1] [--short]\n");
    return 2;
  }
  std::printf("settlement_bench: %d usage records (%d per job), median of %d "
              "runs, SQLite WAL synchronous=FULL\n",
              records, kRecordsPerJob, repeats);

  std::vector<double> verify_rate, per_record_rate, batched_rate, audit_rate,
      checkpoint_ms, prove_ms, verify_cpu_us, per_record_cpu_us,
      batched_cpu_us;
  for (int run = 0; run < repeats; ++run) {
    // Ed25519 alone, over the same records: the key parsed once, the
    // signature checked over the domain-separated bytes.
    {
      Fixture fixture(records);
      auto key = computenet::VerifyingKey::FromHex(
          fixture.provider.signing_key().verifying_key().hex());
      std::vector<v1::UsageReport> parsed(fixture.reports.size());
      for (size_t i = 0; i < parsed.size(); ++i) {
        parsed[i].ParseFromString(fixture.reports[i]);
      }
      const auto start = Clock::now();
      const double cpu_start = CpuSeconds();
      for (const auto& report : parsed) {
        Check(key->Verify(computenet::DomainSeparated(
                              computenet::kUsageRecordDomain, report.record()),
                          report.signature()),
              "verify");
      }
      verify_rate.push_back(records / Seconds(start));
      verify_cpu_us.push_back((CpuSeconds() - cpu_start) * 1e6 / records);

      ledger::Ledger book(fixture.store->database(), ledger::LedgerOptions{"hub", 250});
      const auto settle_start = Clock::now();
      const double settle_cpu = CpuSeconds();
      Settle(fixture, book, 1);
      per_record_rate.push_back(records / Seconds(settle_start));
      per_record_cpu_us.push_back((CpuSeconds() - settle_cpu) * 1e6 / records);

      // The audit of what was just written (records + holds + releases).
      auto size = book.Size();
      const auto audit_start = Clock::now();
      auto audit = ledger::VerifyLedger(fixture.store->database());
      Check(audit.status(), "audit");
      if (audit->usage_records != static_cast<uint64_t>(records)) {
        std::fprintf(stderr, "settlement_bench: %llu of %d records settled\n",
                     static_cast<unsigned long long>(audit->usage_records),
                     records);
        std::exit(1);
      }
      audit_rate.push_back(static_cast<double>(*size) / Seconds(audit_start));

      // A checkpoint of the whole ledger from a cold start (reads every
      // entry hash once), then an entry proof against it.
      ledger::Checkpointer checkpointer(fixture.store->database(), "hub",
                                        fixture.broker_identity.signing_key(),
                                        ledger::CheckpointPolicy{0, 0});
      const auto checkpoint_start = Clock::now();
      Check(checkpointer.CheckpointNow(kStartMs).status(), "checkpoint");
      checkpoint_ms.push_back(Seconds(checkpoint_start) * 1000);
      const auto prove_start = Clock::now();
      auto proof = ledger::ProveEntry(fixture.store->database(), *size / 2);
      Check(proof.status(), "prove");
      prove_ms.push_back(Seconds(prove_start) * 1000);
      Check(computenet::VerifyEntryProof(
                fixture.broker_identity.signing_key().verifying_key(), *proof)
                .status(),
            "verify proof");
    }
    {
      Fixture fixture(records);
      ledger::Ledger book(fixture.store->database(), ledger::LedgerOptions{"hub", 250});
      const auto start = Clock::now();
      const double cpu_start = CpuSeconds();
      Settle(fixture, book, 100);
      batched_rate.push_back(records / Seconds(start));
      batched_cpu_us.push_back((CpuSeconds() - cpu_start) * 1e6 / records);
    }
  }
  const double verify = Median(verify_rate);
  const double per_record = Median(per_record_rate);
  const double batched = Median(batched_rate);
  const double verify_us = Median(verify_cpu_us);
  const double per_record_us = Median(per_record_cpu_us);
  const double batched_us = Median(batched_cpu_us);
  std::printf("                                        wall records/s   CPU us/record\n");
  std::printf("  Ed25519 verify alone (libsodium):     %9.0f        %9.1f\n",
              verify, verify_us);
  std::printf("  settled, one commit per record:       %9.0f        %9.1f\n",
              per_record, per_record_us);
  std::printf("  settled, 100 records per commit:      %9.0f        %9.1f\n",
              batched, batched_us);
  std::printf("  ratio to verify alone, per record:    wall %.2f, CPU %.2f\n",
              per_record / verify, verify_us / per_record_us);
  std::printf("  ratio to verify alone, batched:       wall %.2f, CPU %.2f\n",
              batched / verify, verify_us / batched_us);
  std::printf("  offline audit (VerifyLedger):         %9.0f entries/s\n",
              Median(audit_rate));
  std::printf("  checkpoint of %d+ entries, cold:      %9.1f ms\n", records,
              Median(checkpoint_ms));
  std::printf("  one entry proof (reads all leaves):   %9.1f ms\n",
              Median(prove_ms));
  if (!(verify > 0 && per_record > 0 && batched > 0 && Median(audit_rate) > 0)) {
    std::fprintf(stderr, "settlement_bench: measured nothing\n");
    return 1;
  }
  return 0;
}
