// The counter-based Gumbel noise used by device-side sampling (argmax_rows with a temperature):
// a pure function of (seed, global vocabulary index), so every rank of a tensor-parallel group
// perturbs its slice of the logits consistently and the distributed argmax is one sample of
// softmax(logits / temperature) (the Gumbel-max trick). Compiles for host and device, so
// tests can compute the same noise on the CPU. Not a general random-number library.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define SHARDLM_HOST_DEVICE __host__ __device__
#else
#define SHARDLM_HOST_DEVICE
#endif

namespace shardlm::cuda {

SHARDLM_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in (0, 1) with 24 random bits, never 0 or 1.
SHARDLM_HOST_DEVICE inline float uniform01(uint64_t seed, int64_t index) {
  const uint64_t h = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(index)));
  return (static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

// Standard Gumbel noise: -log(-log(u)).
SHARDLM_HOST_DEVICE inline float gumbel_noise(uint64_t seed, int64_t index) {
  return -logf(-logf(uniform01(seed, index)));
}

}  // namespace shardlm::cuda
