// The names the broker uses from the libraries below it (matching, ledger,
// storage), declared once here so the broker's code reads as before the
// split: CapacityIndex rather than matching::CapacityIndex. Private to the
// broker; no public header includes it.
#ifndef COMPUTENET_BROKER_CORE_IMPORTS_H_
#define COMPUTENET_BROKER_CORE_IMPORTS_H_

#include "computenet/ledger/checkpoints.h"
#include "computenet/ledger/clearing_statement.h"
#include "computenet/ledger/directory.h"
#include "computenet/ledger/ledger.h"
#include "computenet/ledger/remote_usage.h"
#include "computenet/ledger/replica.h"
#include "computenet/ledger/usage_records.h"
#include "computenet/matching/accelerator_catalog.h"
#include "computenet/matching/capacity_index.h"
#include "computenet/matching/job_queue.h"
#include "computenet/matching/matcher.h"
#include "computenet/matching/preemption.h"
#include "computenet/matching/provider_stats.h"
#include "computenet/storage/database.h"

namespace computenet::broker {

using ::computenet::matching::AcceleratorCatalog;
using ::computenet::matching::AcceleratorSpec;
using ::computenet::matching::CapacityIndex;
using ::computenet::matching::CardCompute;
using ::computenet::matching::DeviceGroup;
using ::computenet::matching::FigureSource;
using ::computenet::matching::FigureSourceName;
using ::computenet::matching::JobAllocation;
using ::computenet::matching::JobQueue;
using ::computenet::matching::JobQueueOptions;
using ::computenet::matching::MatchContext;
using ::computenet::matching::Matcher;
using ::computenet::matching::NodeCapacity;
using ::computenet::matching::NodeKey;
using ::computenet::matching::Placement;
using ::computenet::matching::PlacementMatcher;
using ::computenet::matching::PlacementRequest;
using ::computenet::matching::PlanPreemption;
using ::computenet::matching::PreemptionCandidate;
using ::computenet::matching::PreemptionOptions;
using ::computenet::matching::PriorityRank;
using ::computenet::matching::ProviderCapacity;
using ::computenet::matching::ProviderEvent;
using ::computenet::matching::ProviderStats;
using ::computenet::matching::QueuedJob;
using ::computenet::matching::ReliabilityPermille;
using ::computenet::matching::RequestShape;
using ::computenet::matching::Reservation;
using ::computenet::matching::WithEvent;
using ::computenet::matching::kDefaultReliabilityPermille;
using ::computenet::matching::kWholeCardMilli;

using ::computenet::ledger::AccountBalance;
using ::computenet::ledger::AccountKindOf;
using ::computenet::ledger::AddCosignature;
using ::computenet::ledger::BindLedgerToBroker;
using ::computenet::ledger::BrokerFileDirectory;
using ::computenet::ledger::BuildStatement;
using ::computenet::ledger::ChargeForCardSeconds;
using ::computenet::ledger::ChargeForInterval;
using ::computenet::ledger::CheckpointPolicy;
using ::computenet::ledger::Checkpointer;
using ::computenet::ledger::ClearingAccount;
using ::computenet::ledger::CompareSettlement;
using ::computenet::ledger::ConsumerAccount;
using ::computenet::ledger::CreditorLines;
using ::computenet::ledger::DebtorLines;
using ::computenet::ledger::DescribeDifferences;
using ::computenet::ledger::Directory;
using ::computenet::ledger::ExportLedger;
using ::computenet::ledger::FeeAccount;
using ::computenet::ledger::FeeFor;
using ::computenet::ledger::Hold;
using ::computenet::ledger::HoldIdFor;
using ::computenet::ledger::HoldRequest;
using ::computenet::ledger::JobPayer;
using ::computenet::ledger::LatestCheckpoint;
using ::computenet::ledger::Ledger;
using ::computenet::ledger::LedgerAuditOptions;
using ::computenet::ledger::LedgerAuditReport;
using ::computenet::ledger::LedgerLeafHashes;
using ::computenet::ledger::LedgerOptions;
using ::computenet::ledger::ListCheckpoints;
using ::computenet::ledger::MakeStatement;
using ::computenet::ledger::PostedEntry;
using ::computenet::ledger::PostedUsage;
using ::computenet::ledger::ProveEntry;
using ::computenet::ledger::ProviderAccount;
using ::computenet::ledger::RemoteCharge;
using ::computenet::ledger::ReplicaStore;
using ::computenet::ledger::ReplicaUpdate;
using ::computenet::ledger::SignRemoteUsage;
using ::computenet::ledger::SignSettlement;
using ::computenet::ledger::StatementQuery;
using ::computenet::ledger::StoreSettlement;
using ::computenet::ledger::StoredUsageRecord;
using ::computenet::ledger::TransferRequest;
using ::computenet::ledger::UsageRecords;
using ::computenet::ledger::VerifyLedger;
using ::computenet::ledger::VerifyRemoteUsage;
using ::computenet::ledger::VerifySettlementSignature;
using ::computenet::ledger::kMetaBrokerId;
using ::computenet::ledger::kMetaBrokerKey;
using ::computenet::ledger::kMetaV1Entries;
using ::computenet::ledger::kRemoteUsageDomain;
using ::computenet::ledger::kSettlementDomain;
using ::computenet::ledger::kTopUpAccount;

using ::computenet::storage::BindBlob;
using ::computenet::storage::BlobOf;
using ::computenet::storage::Database;
using ::computenet::storage::StatusFromSqlite;

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_CORE_IMPORTS_H_
