// Fuzz target: one safetensors file (the 8-byte header length, the JSON header and the data),
// opened as the packer opens a checkpoint's files. Whatever opens must describe tensors that lie
// inside the mapping, with sizes that match their shapes and dtypes.
#include <cstdint>

#include "formats/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  fuzz::MemoryFile file(data, size);
  fuzz::expect_clear_error([&] {
    const SafetensorsFile st(file.path());
    const uint8_t* begin = st.mapping().data();
    const uint8_t* end = begin + st.mapping().size();
    for (const SafeTensor& t : st.tensors()) {
      fuzz::check(t.data >= begin && t.data + t.nbytes() <= end,
                  "tensor '" + t.name + "' outside the file");
      if (t.dtype)
        fuzz::check(static_cast<uint64_t>(t.numel()) * dtype_size(*t.dtype) == t.nbytes(),
                    "tensor '" + t.name + "': size does not match shape and dtype");
      fuzz::touch(t.data, t.nbytes());
      fuzz::check(st.find(t.name) == &t, "find() does not return tensor '" + t.name + "'");
    }
  });
  return 0;
}
