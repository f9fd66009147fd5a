// Minimal leveled logging to a caller-chosen sink (stderr by default). A Logger is a value the
// caller owns and passes down; there is no global logger and no global level.
// Not a structured-logging framework: one line of text per call.
#pragma once

#include <cstdio>
#include <string>

namespace shardlm {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::kWarn, std::FILE* sink = stderr)
      : level_(level), sink_(sink) {}
  LogLevel level() const { return level_; }
  bool enabled(LogLevel l) const { return static_cast<int>(l) <= static_cast<int>(level_); }
  // Writes "shardlm <level>: <message>\n" when `l` is enabled. Thread-safe (one fputs per line).
  void log(LogLevel l, const std::string& message) const;
  void error(const std::string& m) const { log(LogLevel::kError, m); }
  void warn(const std::string& m) const { log(LogLevel::kWarn, m); }
  void info(const std::string& m) const { log(LogLevel::kInfo, m); }
  void debug(const std::string& m) const { log(LogLevel::kDebug, m); }

 private:
  LogLevel level_;
  std::FILE* sink_;
};

}  // namespace shardlm
