// Bulk enrolment through the broker's own Store and Ledger (see enroll.h).
// The only use of broker-internal headers in the load generator.
#include "enroll.h"

#include "computenet/ledger/ledger.h"
#include "jobs/store.h"

namespace computenet::loadgen {

Status EnrollAll(const std::string& db_path, const EnrollmentPlan& plan,
                 int64_t now_ms) {
  CN_ASSIGN_OR_RETURN(auto store, broker::Store::Open(db_path));
  // One transaction for all enrolments: one fsync instead of thousands.
  Status enrolled = store->database().RunInTransaction([&]() -> Status {
    for (const auto& provider : plan.providers) {
      CN_RETURN_IF_ERROR(
          store->Enroll(broker::Role::kProvider, provider, now_ms));
    }
    for (const auto* group : {&plan.consumers, &plan.unfunded_consumers}) {
      for (const auto& consumer : *group) {
        CN_RETURN_IF_ERROR(
            store->Enroll(broker::Role::kConsumer, consumer, now_ms));
      }
    }
    // The trace's Guaranteed pods are HIGH: the operator grants it to the
    // funded consumers' organizations (each its own name).
    for (const auto& consumer : plan.consumers) {
      CN_RETURN_IF_ERROR(store->SetMaxPriority(
          consumer.name, v1::PRIORITY_CLASS_HIGH, now_ms));
    }
    return OkStatus();
  });
  if (!enrolled.ok()) return enrolled;
  if (plan.topup_per_consumer > 0) {
    ledger::Ledger ledger(store->database());
    for (const auto& consumer : plan.consumers) {
      CN_ASSIGN_OR_RETURN(
          auto posted,
          ledger.TopUp(consumer.name, plan.topup_per_consumer,
                       "loadgen-" + consumer.name, "load generator", now_ms));
      (void)posted;
    }
  }
  return OkStatus();
}

}  // namespace computenet::loadgen
