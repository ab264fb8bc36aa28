// computenet._core: the C++ consumer SDK (computenet::consumer::Client) for
// Python. The typed, documented API is the pure-Python layer in
// python/computenet/; this module is its thin bridge:
//  - Connection wraps one consumer::Client (one CURVE connection). Every
//    blocking call releases the GIL (py::gil_scoped_release) and then takes
//    the Connection's own mutex, so a Connection shared by mistake between
//    threads is serialized instead of racing; the Python Client gives each
//    thread its own Connection, so threads never wait for each other.
//  - Protobuf messages cross as dicts (field names as in proto/, enums by
//    name, int64 as int, bytes as bytes), converted by reflection.
//  - A non-OK Status raises the computenet.errors class for its code
//    (computenet.errors._from_status), carrying the broker's message.
//  - The request forms ("A800|H800", "2.5" A100-equivalents, priority names)
//    are parsed by the same functions the CLI uses (request_forms.h).
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "computenet/common/identity.h"
#include "computenet/common/sha256.h"
#include "computenet/common/status.h"
#include "computenet/consumer/client.h"
#include "computenet/consumer/request_forms.h"
#include "computenet/consumer/statement.h"

namespace py = pybind11;
namespace pb = google::protobuf;

namespace computenet::python {
namespace {

// A non-OK Status on its way to Python (see the translator in the module).
struct StatusError {
  Status status;
};

[[noreturn]] void Raise(const Status& status) { throw StatusError{status}; }

template <typename T>
T Unwrap(StatusOr<T> result) {
  if (!result.ok()) Raise(result.status());
  return std::move(*result);
}

// --- protobuf <-> Python, by reflection -----------------------------------

py::dict MessageToDict(const pb::Message& message);

py::object ScalarValue(const pb::Message& message,
                       const pb::FieldDescriptor* field, int index) {
  const pb::Reflection* r = message.GetReflection();
  const bool rep = index >= 0;
  using T = pb::FieldDescriptor;
  switch (field->cpp_type()) {
    case T::CPPTYPE_INT32:
      return py::int_(rep ? r->GetRepeatedInt32(message, field, index)
                          : r->GetInt32(message, field));
    case T::CPPTYPE_INT64:
      return py::int_(rep ? r->GetRepeatedInt64(message, field, index)
                          : r->GetInt64(message, field));
    case T::CPPTYPE_UINT32:
      return py::int_(rep ? r->GetRepeatedUInt32(message, field, index)
                          : r->GetUInt32(message, field));
    case T::CPPTYPE_UINT64:
      return py::int_(rep ? r->GetRepeatedUInt64(message, field, index)
                          : r->GetUInt64(message, field));
    case T::CPPTYPE_DOUBLE:
      return py::float_(rep ? r->GetRepeatedDouble(message, field, index)
                            : r->GetDouble(message, field));
    case T::CPPTYPE_FLOAT:
      return py::float_(rep ? r->GetRepeatedFloat(message, field, index)
                            : r->GetFloat(message, field));
    case T::CPPTYPE_BOOL:
      return py::bool_(rep ? r->GetRepeatedBool(message, field, index)
                           : r->GetBool(message, field));
    case T::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* value =
          rep ? r->GetRepeatedEnum(message, field, index)
              : r->GetEnum(message, field);
      return py::str(value->name());
    }
    case T::CPPTYPE_STRING: {
      std::string text = rep ? r->GetRepeatedString(message, field, index)
                             : r->GetString(message, field);
      if (field->type() == T::TYPE_BYTES) return py::bytes(text);
      return py::str(text);
    }
    case T::CPPTYPE_MESSAGE:
      return MessageToDict(rep ? r->GetRepeatedMessage(message, field, index)
                               : r->GetMessage(message, field));
  }
  return py::none();
}

py::dict MessageToDict(const pb::Message& message) {
  py::dict out;
  const pb::Descriptor* descriptor = message.GetDescriptor();
  const pb::Reflection* r = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const pb::FieldDescriptor* field = descriptor->field(i);
    py::str name(field->name());
    if (field->is_map()) {
      py::dict map;
      const pb::FieldDescriptor* key = field->message_type()->map_key();
      const pb::FieldDescriptor* value = field->message_type()->map_value();
      for (int j = 0; j < r->FieldSize(message, field); ++j) {
        const pb::Message& entry = r->GetRepeatedMessage(message, field, j);
        map[ScalarValue(entry, key, -1)] = ScalarValue(entry, value, -1);
      }
      out[name] = map;
    } else if (field->is_repeated()) {
      py::list list;
      for (int j = 0; j < r->FieldSize(message, field); ++j) {
        list.append(ScalarValue(message, field, j));
      }
      out[name] = list;
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
               !r->HasField(message, field)) {
      out[name] = py::none();
    } else {
      out[name] = ScalarValue(message, field, -1);
    }
  }
  return out;
}

template <typename Int>
Int IntFrom(const py::handle& value, const std::string& what) {
  if (!py::isinstance<py::int_>(value) || py::isinstance<py::bool_>(value)) {
    Raise(InvalidArgumentError(what + ": want an integer, got " +
                               std::string(py::str(py::type::of(value)))));
  }
  try {
    return value.cast<Int>();
  } catch (const py::cast_error&) {
    Raise(InvalidArgumentError(
        what + " is out of range: " + std::string(py::str(value))));
  }
}

std::string StringFrom(const py::handle& value, const std::string& what) {
  if (!py::isinstance<py::str>(value)) {
    Raise(InvalidArgumentError(what + ": want a string, got " +
                               std::string(py::str(py::type::of(value)))));
  }
  return value.cast<std::string>();
}

void SetScalar(pb::Message* message, const pb::FieldDescriptor* field,
               const py::handle& value) {
  const pb::Reflection* r = message->GetReflection();
  const bool rep = field->is_repeated();
  const std::string what = field->full_name();
  using T = pb::FieldDescriptor;
  switch (field->cpp_type()) {
    case T::CPPTYPE_INT32: {
      auto v = IntFrom<int32_t>(value, what);
      rep ? r->AddInt32(message, field, v) : r->SetInt32(message, field, v);
      return;
    }
    case T::CPPTYPE_INT64: {
      auto v = IntFrom<int64_t>(value, what);
      rep ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
      return;
    }
    case T::CPPTYPE_UINT32: {
      auto v = IntFrom<uint32_t>(value, what);
      rep ? r->AddUInt32(message, field, v) : r->SetUInt32(message, field, v);
      return;
    }
    case T::CPPTYPE_UINT64: {
      auto v = IntFrom<uint64_t>(value, what);
      rep ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
      return;
    }
    case T::CPPTYPE_BOOL: {
      if (!py::isinstance<py::bool_>(value)) {
        Raise(InvalidArgumentError(what + ": want True or False"));
      }
      const bool v = value.cast<bool>();
      rep ? r->AddBool(message, field, v) : r->SetBool(message, field, v);
      return;
    }
    case T::CPPTYPE_ENUM: {
      const std::string name = StringFrom(value, what);
      const pb::EnumValueDescriptor* v =
          field->enum_type()->FindValueByName(name);
      if (v == nullptr)
        Raise(InvalidArgumentError(what + ": no value " + name));
      rep ? r->AddEnum(message, field, v) : r->SetEnum(message, field, v);
      return;
    }
    case T::CPPTYPE_STRING: {
      std::string v = StringFrom(value, what);
      rep ? r->AddString(message, field, std::move(v))
          : r->SetString(message, field, std::move(v));
      return;
    }
    default:
      Raise(InvalidArgumentError(what + ": this field type is not settable "
                                        "from Python"));
  }
}

// Fills message from a dict keyed by proto field names. INVALID_ARGUMENT for
// an unknown name or a value of the wrong type.
void DictToMessage(const py::dict& dict, pb::Message* message) {
  const pb::Descriptor* descriptor = message->GetDescriptor();
  const pb::Reflection* r = message->GetReflection();
  for (auto [key, value] : dict) {
    const std::string name = StringFrom(key, descriptor->full_name() + " key");
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(name);
    if (field == nullptr) {
      Raise(InvalidArgumentError(descriptor->full_name() + " has no field " +
                                 name));
    }
    if (value.is_none()) continue;
    if (field->is_map()) {
      if (!py::isinstance<py::dict>(value)) {
        Raise(InvalidArgumentError(field->full_name() + ": want a dict"));
      }
      const pb::FieldDescriptor* key_field = field->message_type()->map_key();
      const pb::FieldDescriptor* value_field =
          field->message_type()->map_value();
      for (auto [k, v] : value.cast<py::dict>()) {
        pb::Message* entry = r->AddMessage(message, field);
        SetScalar(entry, key_field, k);
        SetScalar(entry, value_field, v);
      }
    } else if (field->is_repeated()) {
      if (py::isinstance<py::str>(value) ||
          !py::isinstance<py::iterable>(value)) {
        Raise(InvalidArgumentError(field->full_name() +
                                   ": want a list, not a single value"));
      }
      for (auto item : value) {
        if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          // e.g. JobSpec.inputs: a list of dicts.
          if (!py::isinstance<py::dict>(item)) {
            Raise(InvalidArgumentError(field->full_name() +
                                       ": want a list of dicts"));
          }
          DictToMessage(item.cast<py::dict>(), r->AddMessage(message, field));
          continue;
        }
        SetScalar(message, field, item);
      }
    } else {
      SetScalar(message, field, value);
    }
  }
}

// --- the connection --------------------------------------------------------

class Connection {
 public:
  Connection(const std::string& endpoint,
             const std::string& broker_identity_path,
             const std::string& identity_dir, int request_timeout_ms,
             int retries) {
    py::gil_scoped_release release;
    PublicIdentity broker =
        Unwrap(PublicIdentity::LoadFile(broker_identity_path));
    broker_key_.emplace(Unwrap(VerifyingKey::FromHex(broker.ed25519_public)));
    Identity identity = Unwrap(Identity::Load(identity_dir));
    name_ = identity.name();
    consumer::ClientOptions options;
    options.broker_endpoint = endpoint;
    options.broker_public_key = broker.curve_public;
    options.request_timeout_ms = request_timeout_ms;
    options.retries = retries;
    client_ = Unwrap(
        consumer::Client::Connect(std::move(options), std::move(identity)));
  }

  const std::string& name() const { return name_; }

  // Runs fn(client) without the GIL and under this connection's mutex.
  template <typename Fn>
  auto Locked(Fn&& fn) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!client_) Raise(FailedPreconditionError("the connection is closed"));
    return fn(*client_);
  }

  py::dict Submit(const py::dict& spec_fields,
                  const std::string& idempotency_key) {
    v1::JobSpec spec;
    DictToMessage(spec_fields, &spec);
    auto reply = Locked([&](consumer::Client& c) {
      return Unwrap(c.Submit(spec, idempotency_key));
    });
    return MessageToDict(reply);
  }

  // Packs and uploads paths for jobs allowed in regions: {digest, size}.
  py::dict UploadInputs(const std::vector<std::string>& paths,
                        const std::vector<std::string>& regions) {
    auto input = Locked([&](consumer::Client& c) {
      return Unwrap(c.UploadInputs(paths, regions));
    });
    return MessageToDict(input);
  }

  // Downloads, checks and unpacks a job's result: {digest, size, provider}.
  py::dict FetchResult(const std::string& job_id, const std::string& out_dir) {
    auto result = Locked([&](consumer::Client& c) {
      return Unwrap(c.FetchResultInto(job_id, out_dir));
    });
    py::dict out;
    out["digest"] = result.digest;
    out["size"] = result.size;
    out["provider"] = result.record.provider();
    return out;
  }

  py::dict GetJob(const std::string& job_id) {
    auto job =
        Locked([&](consumer::Client& c) { return Unwrap(c.GetJob(job_id)); });
    return MessageToDict(job);
  }

  py::dict Cancel(const std::string& job_id) {
    auto reply =
        Locked([&](consumer::Client& c) { return Unwrap(c.Cancel(job_id)); });
    return MessageToDict(reply);
  }

  py::list ListJobs(uint32_t limit, const std::vector<std::string>& states) {
    std::vector<v1::JobState> wanted;
    for (const auto& name : states) {
      v1::JobState state;
      if (!v1::JobState_Parse(name, &state)) {
        Raise(InvalidArgumentError("no job state " + name));
      }
      wanted.push_back(state);
    }
    auto jobs = Locked(
        [&](consumer::Client& c) { return Unwrap(c.ListJobs(limit, wanted)); });
    py::list out;
    for (const auto& job : jobs) out.append(MessageToDict(job));
    return out;
  }

  py::dict WatchJob(const std::string& job_id) {
    auto job =
        Locked([&](consumer::Client& c) { return Unwrap(c.WatchJob(job_id)); });
    return MessageToDict(job);
  }

  // The job's next state change after `state` (a JobState name), or None
  // after timeout_ms without one.
  py::object NextChange(const std::string& job_id, const std::string& state,
                        int timeout_ms) {
    v1::JobInfo current;
    current.set_job_id(job_id);
    v1::JobState parsed;
    if (!v1::JobState_Parse(state, &parsed)) {
      Raise(InvalidArgumentError("no job state " + state));
    }
    current.set_state(parsed);
    auto next = Locked([&](consumer::Client& c) {
      return Unwrap(c.NextChange(current, timeout_ms));
    });
    if (!next.has_value()) return py::none();
    return MessageToDict(*next);
  }

  // Live logs: one GetJobLogs read. cursors: (node, stream name, offset).
  py::dict GetLogs(
      const std::string& job_id, const std::string& node,
      const std::string& stream,
      const std::vector<std::tuple<std::string, std::string, uint64_t>>&
          cursors,
      uint32_t tail_lines) {
    v1::GetJobLogs request;
    request.set_job_id(job_id);
    request.set_node(node);
    auto parse = [](const std::string& name) {
      v1::LogStream parsed;
      if (!v1::LogStream_Parse(name, &parsed)) {
        Raise(InvalidArgumentError("no log stream " + name));
      }
      return parsed;
    };
    request.set_stream(parse(stream));
    for (const auto& [cursor_node, cursor_stream, offset] : cursors) {
      v1::LogCursor* cursor = request.add_cursors();
      cursor->set_node(cursor_node);
      cursor->set_stream(parse(cursor_stream));
      cursor->set_offset(offset);
    }
    request.set_tail_lines(tail_lines);
    auto reply =
        Locked([&](consumer::Client& c) { return Unwrap(c.GetLogs(request)); });
    return MessageToDict(reply);
  }

  py::dict Statement(const std::string& account, int64_t from_ms,
                     int64_t to_ms) {
    consumer::StatementQuery query;
    query.account = account;
    query.from_ms = from_ms;
    query.to_ms = to_ms;
    auto statement = Locked([&](consumer::Client& c) {
      return Unwrap(consumer::FetchVerifiedStatement(c, *broker_key_, query));
    });
    py::dict out;
    out["account"] = statement.account;
    out["broker_id"] = statement.checkpoint.broker_id();
    out["checkpoint_tree_size"] = statement.checkpoint.tree_size();
    out["checkpoint_root_hash"] = HexEncode(statement.checkpoint.root_hash());
    out["checkpoint_timestamp_ms"] = statement.checkpoint.timestamp_ms();
    out["net_amount"] = statement.net_amount;
    out["held_change"] = statement.held_change;
    py::list lines;
    for (const auto& view : statement.lines) {
      py::dict line;
      line["sequence"] = view.sequence;
      line["created_ms"] = view.created_ms;
      line["kind"] = view.kind;
      line["job_id"] = view.job_id;
      line["amount"] = view.amount;
      line["held_change"] = view.held_change;
      line["detail"] = view.detail;
      line["entry"] = py::bytes(view.line.entry());
      lines.append(line);
    }
    out["lines"] = lines;
    return out;
  }

  py::dict FederationStatus() {
    auto view = Locked(
        [&](consumer::Client& c) { return Unwrap(c.GetFederationStatus()); });
    return MessageToDict(view);
  }

  void Close() {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    client_.reset();
  }

  bool closed() {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    return client_ == nullptr;
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<consumer::Client> client_;
  std::optional<VerifyingKey> broker_key_;
  std::string name_;
};

std::vector<std::string> ParseAlternatives(
    const std::vector<std::string>& entries, const std::string& what) {
  return Unwrap(consumer::ParseAlternatives(entries, what));
}

uint32_t ParseMilli(const std::string& text, const std::string& what,
                    uint32_t max_milli) {
  return Unwrap(consumer::ParseMilli(text, what, max_milli));
}

std::string ParsePriority(const std::string& text) {
  return v1::PriorityClass_Name(Unwrap(consumer::ParsePriorityClass(text)));
}

}  // namespace
}  // namespace computenet::python

PYBIND11_MODULE(_core, m) {
  using computenet::python::Connection;
  using computenet::python::StatusError;
  m.doc() =
      "The C++ consumer SDK's bridge; use the computenet package, not this.";

  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const StatusError& e) {
      py::object errors = py::module_::import("computenet.errors");
      py::object exception = errors.attr("_from_status")(
          static_cast<int>(e.status.code()), e.status.message());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())),
                      exception.ptr());
    }
  });

  py::class_<Connection>(m, "Connection")
      .def(py::init<const std::string&, const std::string&, const std::string&,
                    int, int>(),
           py::arg("endpoint"), py::arg("broker_identity"), py::arg("identity"),
           py::arg("request_timeout_ms"), py::arg("retries"))
      .def_property_readonly("name", &Connection::name)
      .def_property_readonly("closed", &Connection::closed)
      .def("submit", &Connection::Submit, py::arg("spec"),
           py::arg("idempotency_key"))
      .def("get_job", &Connection::GetJob, py::arg("job_id"))
      .def("upload_inputs", &Connection::UploadInputs, py::arg("paths"),
           py::arg("regions"))
      .def("fetch_result", &Connection::FetchResult, py::arg("job_id"),
           py::arg("out_dir"))
      .def("cancel", &Connection::Cancel, py::arg("job_id"))
      .def("list_jobs", &Connection::ListJobs, py::arg("limit"),
           py::arg("states"))
      .def("watch_job", &Connection::WatchJob, py::arg("job_id"))
      .def("next_change", &Connection::NextChange, py::arg("job_id"),
           py::arg("state"), py::arg("timeout_ms"))
      .def("get_logs", &Connection::GetLogs, py::arg("job_id"), py::arg("node"),
           py::arg("stream"), py::arg("cursors"), py::arg("tail_lines"))
      .def("statement", &Connection::Statement, py::arg("account"),
           py::arg("from_ms"), py::arg("to_ms"))
      .def("federation_status", &Connection::FederationStatus)
      .def("close", &Connection::Close);

  m.def("parse_alternatives", &computenet::python::ParseAlternatives,
        py::arg("entries"), py::arg("what"));
  m.def("parse_milli", &computenet::python::ParseMilli, py::arg("text"),
        py::arg("what"), py::arg("max_milli"));
  m.def("parse_priority", &computenet::python::ParsePriority, py::arg("text"));
}
