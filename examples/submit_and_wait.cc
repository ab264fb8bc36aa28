// A minimal consumer application on the consumer SDK: submit one job, follow
// its state changes, and print what it cost.
//
//   submit_and_wait ENDPOINT BROKER_IDENTITY_PUB KEY_DIR -- CMD ARGS...
#include <cstdio>
#include <string>

#include "computenet/consumer/client.h"

int main(int argc, char** argv) {
  if (argc < 6 || std::string(argv[4]) != "--") {
    std::fprintf(stderr,
                 "usage: %s ENDPOINT BROKER_IDENTITY_PUB KEY_DIR -- CMD...\n",
                 argv[0]);
    return 2;
  }
  auto broker = computenet::PublicIdentity::LoadFile(argv[2]);
  auto identity = computenet::Identity::Load(argv[3]);
  if (!broker.ok() || !identity.ok()) {
    std::fprintf(stderr, "%s\n", (broker.ok() ? identity.status()
                                              : broker.status())
                                     .ToString()
                                     .c_str());
    return 1;
  }
  computenet::consumer::ClientOptions options;
  options.broker_endpoint = argv[1];
  options.broker_public_key = broker->curve_public;
  auto client = computenet::consumer::Client::Connect(options, *identity);
  if (!client.ok()) return 1;

  computenet::v1::JobSpec spec;
  for (int i = 5; i < argc; ++i) spec.add_command(argv[i]);
  spec.set_cards_per_node(1);
  spec.set_max_duration_s(600);
  auto submitted = (*client)->Submit(spec);
  if (!submitted.ok()) {
    std::fprintf(stderr, "submit: %s\n", submitted.status().ToString().c_str());
    return 1;
  }
  auto job = (*client)->Wait(
      submitted->job_id(), 600'000, [](const computenet::v1::JobInfo& info) {
        std::printf("%s is now %s\n", info.job_id().c_str(),
                    computenet::v1::JobState_Name(info.state()).c_str());
      });
  if (!job.ok()) {
    std::fprintf(stderr, "wait: %s\n", job.status().ToString().c_str());
    return 1;
  }
  std::printf("exit %d, %llu card-seconds, charged %lld minor units of %s\n",
              job->exit_code(),
              static_cast<unsigned long long>(job->card_seconds()),
              static_cast<long long>(job->charged()), job->currency().c_str());
  return job->state() == computenet::v1::JOB_STATE_SUCCEEDED ? 0 : 3;
}
