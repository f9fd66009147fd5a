// ApiError: an HTTP status and OpenAI's error object ({"error": {"message", "type", "param",
// "code"}}), thrown by request parsing and the handlers and turned into the response by the
// server. Messages speak to the API user: never a stack trace or an internal detail.
#pragma once

#include <stdexcept>
#include <string>

namespace shardlm::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = "",
           std::string code = "")
      : std::runtime_error(message),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }  // "" = null
  const std::string& code() const { return code_; }    // "" = null

 private:
  int status_;
  std::string type_, param_, code_;
};

// 400 invalid_request_error naming the field.
[[noreturn]] inline void bad_request(const std::string& message, const std::string& param = "") {
  throw ApiError(400, message, "invalid_request_error", param);
}

}  // namespace shardlm::serve
