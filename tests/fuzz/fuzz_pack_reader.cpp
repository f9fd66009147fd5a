// Fuzz target: one whole pack rank file (header, manifest, data section), opened as every rank
// opens its pack: header and checksums, the FlatBuffers Verifier, the semantic checks. When it
// opens, everything the runtime reads must be safe: tensor bytes inside the mapping with sizes
// that match shape and dtype, carried files decompressed (or refused) and the tensor hashes
// verified.
// Checksums would stop almost every mutation at the header, so the target reseals the input the
// way a crafted file would be made: it recomputes the manifest and header checksums (when the
// header's offsets point inside the input) before opening, unless the first byte after the
// header's fields is not zero (the seeds have 0 there), which keeps the checksum checks fuzzed.
#include <cstdint>
#include <cstring>
#include <vector>

#include "formats/blob.h"
#include "formats/pack_format.h"
#include "formats/pack_reader.h"
#include "fuzz_util.h"

namespace {

void reseal(std::vector<uint8_t>& bytes) {
  using namespace shardlm;
  if (bytes.size() <= sizeof(PackHeader) || bytes[sizeof(PackHeader)] != 0) return;
  PackHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.manifest_offset <= bytes.size() && h.manifest_size <= bytes.size() - h.manifest_offset)
    h.manifest_xxh3 = xxh3_64(bytes.data() + h.manifest_offset, h.manifest_size);
  h.header_xxh3 = xxh3_64(&h, kPackHeaderHashedBytes);
  std::memcpy(bytes.data(), &h, sizeof h);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  std::vector<uint8_t> bytes(data, data + size);
  reseal(bytes);
  fuzz::MemoryFile file(bytes.data(), bytes.size());
  fuzz::expect_clear_error([&] {
    const auto pack = PackReader::open(file.path());
    const uint8_t* begin = pack->mapping().data();
    const uint8_t* end = begin + pack->mapping().size();
    for (const PackTensor& t : pack->tensors()) {
      fuzz::check(t.data >= begin && t.nbytes <= static_cast<uint64_t>(end - t.data),
                  "tensor '" + t.name + "' outside the file");
      fuzz::touch(t.data, t.nbytes);
      fuzz::check(pack->find(t.name) == &t, "find() misses tensor '" + t.name + "'");
    }
    for (const std::string& name : pack->file_names())
      fuzz::expect_clear_error([&] { (void)pack->file(name); });
    pack->verify_tensors();
  });
  return 0;
}
