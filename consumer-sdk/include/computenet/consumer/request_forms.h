// Request forms: turning what a person types (CLI flags, config values) into
// JobSpec fields: "A800|H800" model lists, "2.5" A100-equivalents as
// thousandths, priority class names. The broker validates the spec again;
// these give early, precise errors.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_CONSUMER_REQUEST_FORMS_H_
#define COMPUTENET_CONSUMER_REQUEST_FORMS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::consumer {

// Splits each entry on '|' ("A800|H800" -> A800, H800), keeping order and
// dropping repeats. INVALID_ARGUMENT (naming `what`) for an empty name.
StatusOr<std::vector<std::string>> ParseAlternatives(
    const std::vector<std::string>& entries, const std::string& what);

// A decimal with up to three decimals as thousandths: "8" -> 8000,
// "2.5" -> 2500, "0.125" -> 125. INVALID_ARGUMENT for anything else, for 0,
// or above `max_milli`. No floating point: the text is read digit by digit.
StatusOr<uint32_t> ParseMilli(const std::string& text, const std::string& what,
                              uint32_t max_milli);

// "low", "normal", "high" (any case). INVALID_ARGUMENT otherwise.
StatusOr<v1::PriorityClass> ParsePriorityClass(const std::string& text);

// Secret env (JobSpec.secret_env): "NAME=VALUE" from --secret-env into
// spec. INVALID_ARGUMENT (never quoting the value) for a missing '=', a name
// that is not a variable name, or a name already set.
Status AddSecretEnv(const std::string& entry, v1::JobSpec* spec);
// The value of a secret from a file (--secret-env-file NAME=PATH, a job
// file's secret_env_files): its bytes, one trailing newline dropped.
// FAILED_PRECONDITION if group or others may read the file (chmod 600 it:
// a secret others can read is no secret); NOT_FOUND if it cannot be read;
// INVALID_ARGUMENT if it is empty, over 16 KiB or holds a NUL byte.
StatusOr<std::string> ReadSecretValueFile(const std::string& path);
// "NAME=PATH": the file's value as spec's secret NAME.
Status AddSecretEnvFile(const std::string& entry, v1::JobSpec* spec);

}  // namespace computenet::consumer

#endif  // COMPUTENET_CONSUMER_REQUEST_FORMS_H_
