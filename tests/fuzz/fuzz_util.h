// Shared pieces of the fuzz targets (tests/fuzz/fuzz_*.cpp): what counts as a clear error, the
// input split into parts, and an in-memory file for parsers that take a path.
// A target calls the parser under test inside expect_clear_error(): returning normally or
// throwing shardlm::Error with a non-empty message and a code other than kInternal is the
// contract; any other exception is a finding (reported and aborted, so libFuzzer saves the input).
// Not a test framework: the targets are plain libFuzzer entry points (see fuzz_replay_main.cpp for
// the build without libFuzzer).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/status.h"

namespace shardlm::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void check(bool ok, const std::string& what) {
  if (!ok) finding(what);
}

// Runs `fn`; a shardlm::Error must carry a message and a code that is not kInternal (a bug).
template <typename Fn>
bool expect_clear_error(Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const Error& e) {
    if (e.code() == StatusCode::kInternal) finding(std::string("internal error: ") + e.what());
    if (std::string_view(e.what()).empty()) finding("an Error without a message");
    return false;
  } catch (const std::exception& e) {
    finding(std::string("an exception other than shardlm::Error escaped: ") + e.what());
  } catch (...) {
    finding("a non-std exception escaped");
  }
}

// The input cut at NUL bytes into at most `max_parts` parts (the last part keeps any further NULs).
// JSON and templates hold no raw NUL, so NUL is a safe separator between a file and its input.
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && parts.size() < max_parts) {
      parts.emplace_back();
      continue;
    }
    parts.back().push_back(static_cast<char>(data[i]));
  }
  return parts;
}

// The bytes as an anonymous in-memory file, reachable by path (/proc/self/fd/N) for the
// parsers that map a path. The file is closed by the destructor.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd_ < 0) finding("memfd_create failed");
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) finding("writing the memfd failed");
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Reads every byte of [p, p + n) so ASan sees an access outside a mapping or allocation.
inline uint8_t touch(const uint8_t* p, size_t n) {
  uint8_t x = 0;
  for (size_t i = 0; i < n; ++i) x ^= p[i];
  return x;
}

}  // namespace shardlm::fuzz
