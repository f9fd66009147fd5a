// Logger: formats one line and writes it with a single stdio call.
#include "runtime/core/logging.h"

namespace shardlm {

void Logger::log(LogLevel l, const std::string& message) const {
  if (!enabled(l) || sink_ == nullptr) return;
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  const std::string line =
      std::string("shardlm ") + kNames[static_cast<int>(l)] + ": " + message + "\n";
  std::fputs(line.c_str(), sink_);
}

}  // namespace shardlm
