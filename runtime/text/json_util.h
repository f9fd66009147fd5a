// Small helpers to read fields out of nlohmann::json with errors that name the field
// (Error(kFormat, "<doc>: <path>: ...")). Used by the tokenizer loaders; not a schema validator.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/core/status.h"

namespace shardlm::text {

using Json = nlohmann::json;

[[noreturn]] inline void bad_field(const std::string& path, const std::string& what) {
  fail(StatusCode::kFormat, path + ": " + what);
}

inline Json parse_json(const std::string& text, const std::string& doc) {
  try {
    return Json::parse(text);
  } catch (const std::exception& e) {
    fail(StatusCode::kFormat, doc + ": not valid JSON: " + e.what());
  }
}

inline const Json& need(const Json& j, const char* key, const std::string& path) {
  if (!j.is_object()) bad_field(path, "expected an object");
  auto it = j.find(key);
  if (it == j.end()) bad_field(path + "." + key, "missing");
  return *it;
}

inline std::string need_string(const Json& j, const char* key, const std::string& path) {
  const Json& v = need(j, key, path);
  if (!v.is_string()) bad_field(path + "." + key, "expected a string");
  return v.get<std::string>();
}

inline std::string opt_string(const Json& j, const char* key, const std::string& path,
                              const std::string& dflt = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_string()) bad_field(path + "." + key, "expected a string");
  return it->get<std::string>();
}

inline bool opt_bool(const Json& j, const char* key, const std::string& path, bool dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) bad_field(path + "." + key, "expected a boolean");
  return it->get<bool>();
}

inline int64_t opt_int(const Json& j, const char* key, const std::string& path, int64_t dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_number_integer()) bad_field(path + "." + key, "expected an integer");
  return it->get<int64_t>();
}

}  // namespace shardlm::text
