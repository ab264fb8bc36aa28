// Writes the binary seeds of fuzz/corpus/ from real messages, built with the
// same library calls the broker, agents and CLI make, and from a real
// ledger (top-up, hold, signed usage, release, checkpoint). The text seeds
// (TOML configs, identity files) are written by hand. Deterministic: the
// fixed keys of fuzz_support.h and fixed times.
//
// Usage: make_corpus CORPUS_DIR   (e.g. build-fuzz/fuzz/make_corpus
// fuzz/corpus)
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "broker_inputs.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/ledger/clearing_statement.h"
#include "computenet/ledger/remote_usage.h"
#include "computenet/ledger/replica.h"
#include "computenet/v1/peer.pb.h"
#include "ledger_inputs.h"

namespace computenet::fuzz {
namespace {

std::string g_root;

void Write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  const std::string dir = g_root + "/" + target;
  ::mkdir(dir.c_str(), 0755);
  if (!WriteFileAtomically(dir + "/" + name, bytes, 0644).ok()) {
    std::fprintf(stderr, "make_corpus: cannot write %s/%s\n", dir.c_str(),
                 name.c_str());
    std::exit(1);
  }
}

template <typename T>
void Must(const T& result, const char* what) {
  if (!result.ok()) {
    std::fprintf(stderr, "make_corpus: %s: %s\n", what,
                 std::string(result.status().message()).c_str());
    std::exit(1);
  }
}
void MustOk(const Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "make_corpus: %s: %s\n", what,
                 std::string(status.message()).c_str());
    std::exit(1);
  }
}

v1::JobSpec WholeCards() {
  v1::JobSpec spec;
  spec.set_name("finetune");
  spec.add_command("python");
  spec.add_command("train.py");
  (*spec.mutable_env())["EPOCHS"] = "3";
  spec.add_accelerator_models("A800");
  spec.set_cards_per_node(2);
  spec.set_max_duration_s(3600);
  spec.set_max_price_per_card_hour(2000);
  return spec;
}

v1::UsageRecord Record(const std::string& job_id, const std::string& id,
                       int64_t start_ms, int64_t end_ms, uint32_t cards,
                       bool closes) {
  v1::UsageRecord record;
  record.set_record_id(id);
  record.set_job_id(job_id);
  record.set_provider("site-a");
  record.set_model("A800");
  record.set_cards(cards);
  record.set_start_ms(start_ms);
  record.set_end_ms(end_ms);
  record.set_card_seconds(CardSecondsFor(cards, start_ms, end_ms));
  record.set_closes_job(closes);
  return record;
}

std::string Tagged(uint8_t type_index, const std::string& body) {
  return std::string(1, static_cast<char>(type_index)) + body;
}

void Messages() {
  const v1::JobSpec spec = WholeCards();
  v1::JobSpec gang = spec;
  gang.set_cards_per_node(8);
  gang.set_nodes(2);
  v1::JobSpec fractional;
  fractional.add_command("./infer.sh");
  fractional.set_gpu_milli(500);
  fractional.set_preemptible(true);
  fractional.set_priority(v1::PRIORITY_CLASS_LOW);
  fractional.set_max_duration_s(600);
  v1::JobSpec compute;
  compute.add_command("./train.sh");
  compute.set_a100_equivalents_milli(8000);
  compute.add_vendor_classes("domestic");
  compute.add_allowed_regions("north");
  compute.set_max_duration_s(3600);
  Write("job_spec", "whole_cards", spec.SerializeAsString());
  Write("job_spec", "gang", gang.SerializeAsString());
  Write("job_spec", "fractional", fractional.SerializeAsString());
  Write("job_spec", "compute", compute.SerializeAsString());

  v1::RegisterProvider registration = SampleRegistration();
  registration.add_active_job_ids("hub-north-7");
  registration.set_agent_instance("a1b2c3");
  Write("registration", "sample_site", registration.SerializeAsString());
  // The crash of issue 12: two entries of 2^31 cards on one node.
  v1::RegisterProvider wrap = SampleRegistration();
  v1::Accelerator* first = wrap.mutable_nodes(0)->mutable_accelerators(0);
  first->set_count(uint32_t{1} << 31);
  *wrap.mutable_nodes(0)->add_accelerators() = *first;
  Write("registration", "cards_wrap_2_31", wrap.SerializeAsString());

  auto signed_report = SignUsageRecord(
      ProviderKey(), Record("hub-north-7", "r1", 1'700'000'000'000,
                            1'700'000'300'000, 2, false));
  Must(signed_report, "sign");
  const v1::UsageReport report = *signed_report;
  Write("usage_record", "interim", report.SerializeAsString());
  v1::UsageRecord poison = Record("hub-north-7", "r2", 0, 0, 2, true);
  poison.set_start_ms(INT64_MIN);
  poison.set_end_ms(INT64_MAX);
  poison.set_card_seconds(0);
  Write("usage_record", "int64_extremes",
        SignUsageRecord(ProviderKey(), poison)->SerializeAsString());

  // Envelopes as they travel.
  v1::SubmitJob submit;
  *submit.mutable_spec() = spec;
  submit.set_idempotency_key("k-1");
  Write("envelope", "submit_job",
        EncodeEnvelope(v1::MESSAGE_TYPE_SUBMIT_JOB, 1, 1, submit));
  v1::Heartbeat heartbeat;
  heartbeat.set_sent_at_ms(1'700'000'000'000);
  Write("envelope", "heartbeat",
        EncodeEnvelope(v1::MESSAGE_TYPE_HEARTBEAT, 0, 9, heartbeat));
  const Status refused = InvalidArgumentError("job spec: command is empty\n");
  Write("envelope", "error_reply",
        EncodeEnvelope(v1::MESSAGE_TYPE_SUBMIT_JOB_REPLY, 1, 2,
                       v1::SubmitJobReply(), &refused));

  // Request bodies: the first byte indexes kTypes in fuzz_request_bodies.cc.
  Write("request_bodies", "register_provider",
        Tagged(1, registration.SerializeAsString()));
  v1::PlacementResponse response;
  response.set_job_id("hub-north-7");
  response.set_reason("FAILED_PRECONDITION: cards busy");
  *response.mutable_status() =
      StatusToProto(FailedPreconditionError("cards busy"));
  Write("request_bodies", "placement_response",
        Tagged(2, response.SerializeAsString()));
  v1::JobStatusUpdate update;
  update.set_job_id("hub-north-7");
  update.set_state(v1::JOB_STATE_SUCCEEDED);
  update.set_message("exit 0");
  Write("request_bodies", "job_status_update",
        Tagged(3, update.SerializeAsString()));
  Write("request_bodies", "usage_report",
        Tagged(4, report.SerializeAsString()));
  v1::UpdateOffer offer;
  v1::NodeOfferChange* change = offer.add_nodes();
  change->set_node("l40s-1");
  change->set_offer(v1::CAPACITY_OFFER_WITHDRAWN);
  offer.set_reclaim_grace_ms(30000);
  Write("request_bodies", "update_offer", Tagged(5, offer.SerializeAsString()));
  Write("request_bodies", "submit_job", Tagged(6, submit.SerializeAsString()));
  v1::GetJob get;
  get.set_job_id("hub-north-7");
  Write("request_bodies", "get_job", Tagged(7, get.SerializeAsString()));
  v1::ListJobs list;
  list.set_limit(10);
  list.add_states(v1::JOB_STATE_RUNNING);
  Write("request_bodies", "list_jobs", Tagged(9, list.SerializeAsString()));
  v1::CapacityAdvert advert;
  advert.set_origin("hub-east");
  advert.set_region("east");
  advert.set_sequence(3);
  advert.set_full(true);
  v1::CapacityEntry* entry = advert.add_entries();
  entry->set_model("H800");
  entry->set_vendor_class("nvidia");
  entry->set_free_cards(16);
  entry->set_largest_node_cards(8);
  v1::GangCapacity* gangs = entry->add_gangs();
  gangs->set_cards_per_node(8);
  gangs->set_nodes(2);
  entry->set_lowest_price(1800);
  entry->set_highest_price(2400);
  entry->set_currency("CNY");
  entry->set_reliability_bp(9900);
  Write("request_bodies", "capacity_advert",
        Tagged(12, advert.SerializeAsString()));
  v1::ForwardJob forward;
  forward.mutable_job()->set_job_id("hub-east-12");
  forward.mutable_job()->set_consumer("carol");
  *forward.mutable_job()->mutable_spec() = gang;
  forward.add_path("hub-east");
  forward.set_hop_limit(2);
  forward.set_budget(500000);
  Write("request_bodies", "forward_job",
        Tagged(13, forward.SerializeAsString()));
  v1::RemoteUsage remote;
  remote.set_job_id("hub-north-7");
  remote.set_record(report.record());
  remote.set_provider_signature(report.signature());
  remote.set_billed_card_seconds(600);
  remote.set_price_per_card_hour(1500);
  remote.set_amount(250);
  remote.set_currency("CNY");
  remote.set_remote_broker("hub-east");
  remote.set_cumulative_card_seconds(600);
  MustOk(ledger::SignRemoteUsage(ProviderKey(), &remote), "sign remote usage");
  Write("request_bodies", "remote_usage",
        Tagged(15, remote.SerializeAsString()));
  v1::SettlementLine line;
  line.set_record_id("r1");
  line.set_job_id("hub-north-7");
  line.set_amount(250);
  v1::SettlementStatement statement = ledger::MakeStatement(
      "hub-east", "hub-north", {line, line}, 1700000000000);
  v1::SignedSettlement settlement;
  settlement.set_statement(statement.SerializeAsString());
  settlement.set_debtor_signature(
      *ledger::SignSettlement(ProviderKey(), settlement.statement()));
  Write("request_bodies", "peer_settlement",
        Tagged(18, settlement.SerializeAsString()));
  v1::GetStatement statement_request;
  statement_request.set_account("consumer:alice");
  Write("request_bodies", "get_statement",
        Tagged(22, statement_request.SerializeAsString()));
}

// A real ledger of `broker_id`, signed by `key`: a top-up, a job's hold,
// two signed usage records posted against it, the release, checkpoints.
std::unique_ptr<storage::Database> RealLedger(const std::string& broker_id,
                                              const SigningKey& key) {
  auto db = NewLedgerFile();
  if (broker_id != "hub") {
    MustOk(db->SetMeta(ledger::kMetaBrokerId, broker_id), "meta");
    MustOk(db->SetMeta(ledger::kMetaBrokerKey, key.verifying_key().hex()),
           "meta");
  }
  FuzzDirectory directory;
  ledger::Ledger books(*db, directory, ledger::LedgerOptions{broker_id, 500});
  ledger::Checkpointer checkpointer(*db, broker_id, key,
                                    ledger::CheckpointPolicy{0, 0});
  int64_t now = 1'700'000'000'000;
  Must(books.TopUp("alice", 1'000'000, "wire-1", "", now += 1000), "topup");
  ledger::HoldRequest hold;
  hold.job_id = "hub-7";
  hold.consumer = "alice";
  hold.provider = "site-a";
  hold.currency = "CNY";
  hold.attempt = 1;
  hold.cards = 2;
  hold.max_duration_s = 3600;
  hold.price_per_card_hour = 1500;
  Must(books.PlaceHold(hold, now += 1000), "hold");
  Must(checkpointer.CheckpointNow(now += 1000), "checkpoint");
  v1::JobInfo job;
  job.set_job_id("hub-7");
  job.set_consumer("alice");
  job.set_provider("site-a");
  job.set_model("A800");
  job.set_currency("CNY");
  job.set_attempts(1);
  job.set_price_per_card_hour(1500);
  job.mutable_spec()->set_cards_per_node(2);
  job.mutable_spec()->set_max_duration_s(3600);
  int64_t start = 1'699'999'000'000;
  for (int i = 0; i < 2; ++i) {
    const bool closes = i == 1;
    v1::UsageRecord record = Record("hub-7", "r" + std::to_string(i), start,
                                    start + 600'000, 2, closes);
    start += 600'000;
    auto signed_report = SignUsageRecord(ProviderKey(), record);
    Must(signed_report, "sign");
    Must(books.PostUsage(
             job,
             ledger::StoredUsageRecord{"site-a", record.record_id(), "hub-7",
                                       signed_report->record(),
                                       signed_report->signature(), 1},
             record, now += 1000),
         "post usage");
  }
  Must(books.SetCreditLimit("consumer:alice", 5000, now += 1000), "limit");
  Must(checkpointer.CheckpointNow(now += 1000), "checkpoint");
  return db;
}

std::string Blob(const SQLite::Column& column) {
  return storage::BlobOf(column);
}

void Ledgers() {
  auto db = RealLedger("hub", BrokerKey());
  // The audit's input: every row the file holds, in the harness's layout.
  std::string file;
  MustOk(db->RunInTransaction([&]() -> Status {
    auto entries =
        db->PrepareOnce("SELECT entry FROM ledger_entries ORDER BY sequence");
    while (entries->executeStep()) {
      file += std::string("R") + Blob(entries->getColumn(0)) + kSegment;
    }
    auto records = db->PrepareOnce("SELECT record FROM usage_records");
    while (records->executeStep()) {
      file += std::string("U") + Blob(records->getColumn(0)) + kSegment;
    }
    auto checkpoints = db->PrepareOnce(
        "SELECT checkpoint FROM ledger_checkpoints ORDER BY tree_size");
    while (checkpoints->executeStep()) {
      file += std::string("C") + Blob(checkpoints->getColumn(0)) + kSegment;
    }
    return OkStatus();
  }),
         "export rows");
  Write("ledger_audit", "real_ledger", file);

  auto proof = ledger::ProveEntry(*db, 2);
  Must(proof, "prove");
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.add_whitespace = true;
  if (!google::protobuf::util::MessageToJsonString(*proof, &json, print).ok()) {
    std::exit(1);
  }
  Write("proof", "entry_2.json", json);
  Write("proof", "entry_2.binpb", proof->SerializeAsString());

  // A peer's export, as hub-east (the key the replica harness pins).
  auto east = RealLedger("hub-east", ProviderKey());
  auto stream = ledger::ExportLedger(*east, "hub-east", 1, 0);
  Must(stream, "export");
  Write("ledger_replica", "full", stream->SerializeAsString());
  auto tail = ledger::ExportLedger(*east, "hub-east", 3, 2);
  Must(tail, "export tail");
  Write("ledger_replica", "tail", tail->SerializeAsString());
}

}  // namespace
}  // namespace computenet::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus CORPUS_DIR\n");
    return 2;
  }
  computenet::fuzz::g_root = argv[1];
  ::mkdir(argv[1], 0755);
  computenet::fuzz::QuietLogs();
  computenet::fuzz::Messages();
  computenet::fuzz::Ledgers();
  std::printf("make_corpus: wrote the binary seeds under %s\n", argv[1]);
  return 0;
}
