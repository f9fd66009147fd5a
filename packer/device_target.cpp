// Device profiles, nvidia-smi detection, host memory.
#include "packer/device_target.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>
#include <sstream>

namespace shardlm {
namespace {

struct Profile {
  const char* name;
  const char* description;
  uint64_t mib;
};

constexpr Profile kProfiles[] = {
    {"h100", "NVIDIA H100 80GB HBM3", 81559},  {"h200", "NVIDIA H200 141GB HBM3e", 143771},
    {"a100-80g", "NVIDIA A100 80GB", 81920},   {"a100-40g", "NVIDIA A100 40GB", 40960},
    {"l40s", "NVIDIA L40S 48GB", 46068},       {"l4", "NVIDIA L4 24GB", 23034},
    {"a10", "NVIDIA A10 24GB", 23028},         {"rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24564},
};

}  // namespace

std::optional<DeviceTarget> device_profile(const std::string& name) {
  for (const Profile& p : kProfiles)
    if (name == p.name) return DeviceTarget{p.description, p.mib << 20};
  return std::nullopt;
}

std::vector<std::string> device_profile_names() {
  std::vector<std::string> out;
  for (const Profile& p : kProfiles) out.emplace_back(p.name);
  return out;
}

std::optional<DeviceTarget> detect_gpu() {
  FILE* f = ::popen("nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null", "r");
  if (f == nullptr) return std::nullopt;
  std::array<char, 512> line{};
  std::string first;
  if (std::fgets(line.data(), line.size(), f) != nullptr) first = line.data();
  const int rc = ::pclose(f);
  if (rc != 0 || first.empty()) return std::nullopt;
  const size_t comma = first.rfind(',');
  if (comma == std::string::npos) return std::nullopt;
  try {
    const uint64_t mib = std::stoull(first.substr(comma + 1));
    return DeviceTarget{first.substr(0, comma) + " (detected)", mib << 20};
  } catch (...) {
    return std::nullopt;
  }
}

DeviceTarget host_memory() {
  const uint64_t pages = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES));
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return DeviceTarget{"host memory", pages * page};
}

}  // namespace shardlm
