// `shardlm-pack --inspect DIR [--verify] [--json]`: describe (and optionally re-hash) a pack set.
#pragma once

#include <iosfwd>
#include <string>

namespace shardlm {

// Prints family, dims, tp, tensors, bytes and the memory plan of every rank in `dir`.
// With `verify`, re-hashes every tensor and throws Error(kFormat) on the first mismatch.
void inspect_pack(const std::string& dir, bool verify, bool json, std::ostream& out);

}  // namespace shardlm
