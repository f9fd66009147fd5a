// GPTQ linear layers -> shardlm int4 / int8 rows (see gptq_source.h).
#include "packer/gptq_source.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/quant.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string base_name(const std::string& weight_name) {
  const std::string suffix = ".weight";
  if (weight_name.size() > suffix.size() &&
      weight_name.compare(weight_name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return weight_name.substr(0, weight_name.size() - suffix.size());
  return weight_name;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

int64_t n_groups(const GptqScheme& s, int64_t n_in) {
  return s.group_size == 0 ? 1 : (n_in + s.group_size - 1) / s.group_size;
}

int64_t group_of(const GptqScheme& s, int64_t k) { return s.group_size == 0 ? 0 : k / s.group_size; }

uint32_t read_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The f16 bits of scale [g, n] (F16 as stored; BF16 and F32 rounded to f16).
uint16_t scale_f16(const SafeTensor& t, int64_t n_out, int64_t g, int64_t n) {
  const size_t i = static_cast<size_t>(g * n_out + n);
  if (*t.dtype == DType::kF16) {
    uint16_t h;
    std::memcpy(&h, t.data + i * 2, 2);
    return h;
  }
  float f;
  convert_dtype(t.data + i * dtype_size(*t.dtype), *t.dtype, &f, DType::kF32, 1);
  return f32_to_f16(f);
}

// A tensor of the linear, checked for dtype and shape.
const SafeTensor& need(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape,
                       bool want_float) {
  const SafeTensor* t = ckpt.find(name);
  if (t == nullptr)
    fail(StatusCode::kFormat, ckpt.dir() + ": tensor '" + name +
                                  "' is missing (GPTQ linears need .qweight, .qzeros and .scales)");
  if (want_float ? !t->dtype : t->dtype_name != "I32")
    fail(StatusCode::kFormat, t->file->path() + ": tensor '" + name + "' has dtype " + t->dtype_name + "; GPTQ " +
                                  (want_float ? "scales are F16 (or BF16, F32)" : "packs its values in I32"));
  if (t->shape != shape)
    fail(StatusCode::kFormat, t->file->path() + ": tensor '" + name + "' has shape " + shape_str(t->shape) +
                                  ", config.json and the GPTQ scheme imply " + shape_str(shape));
  return *t;
}

}  // namespace

std::string GptqScheme::summary() const {
  return "gptq " + std::to_string(bits) + "-bit, " +
         (group_size == 0 ? std::string("one group per row") : "groups of " + std::to_string(group_size));
}

std::optional<GptqScheme> read_gptq_scheme(const std::string& model_dir) {
  const fs::path path = fs::path(model_dir) / "config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;  // load_hf_config reports a missing config.json
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_gptq_scheme(ss.str(), path.string());
}

std::optional<GptqScheme> parse_gptq_scheme(const std::string& config_text,
                                            const std::string& config_name) {
  const json cfg = json::parse(config_text, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object() || !cfg.contains("quantization_config")) return std::nullopt;
  const std::string where = config_name + ": quantization_config";
  const json& q = cfg["quantization_config"];
  if (q.is_null()) return std::nullopt;
  if (!q.is_object()) fail(StatusCode::kFormat, where + " is not an object");
  const std::string supported =
      "shardlm-pack imports GPTQ checkpoints (symmetric, 4 or 8 bits, groups of consecutive inputs); "
      "pack the unquantized checkpoint with --weights int4|int8 instead";
  auto get = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!q.contains(key) || q[key].is_null()) return fallback;
    const json& v = q[key];
    bool ok;
    if constexpr (std::is_same_v<T, bool>) {
      ok = v.is_boolean();
    } else if constexpr (std::is_same_v<T, int64_t>) {
      ok = v.is_number_integer();
    } else {
      ok = v.is_string();
    }
    if (!ok) fail(StatusCode::kFormat, where + "." + key + " has the wrong type (" + v.type_name() + ")");
    return v.get<T>();
  };
  std::string method = get("quant_method", std::string());
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
  if (method != "gptq")
    fail(StatusCode::kUnsupported,
         where + ".quant_method is '" + method + "': this quantization method is not supported; " + supported);
  GptqScheme s;
  const int64_t bits = get("bits", int64_t{4});
  if (bits != 4 && bits != 8)
    fail(StatusCode::kUnsupported,
         where + ".bits is " + std::to_string(bits) + ": shardlm holds 4- and 8-bit weights; " + supported);
  s.bits = static_cast<int>(bits);
  const int64_t group = get("group_size", int64_t{128});
  if (group == -1) {
    s.group_size = 0;
  } else if (group <= 0 || group % kQuantBlock != 0) {
    fail(StatusCode::kUnsupported, where + ".group_size is " + std::to_string(group) +
                                       ": shardlm's scales cover blocks of 32 inputs, so a group must be -1 "
                                       "or a multiple of 32; " + supported);
  } else {
    s.group_size = group;
  }
  if (!get("sym", true))
    fail(StatusCode::kUnsupported, where + ".sym is false: asymmetric zero points are not supported (shardlm's "
                                           "int4 and int8 are symmetric); " + supported);
  if (get("lm_head", false))
    fail(StatusCode::kUnsupported,
         where + ".lm_head is true: a GPTQ-quantized lm_head is not supported; " + supported);
  const std::string format = get("checkpoint_format", std::string("gptq"));
  if (format == "gptq") {
    s.zeros_stored_minus_one = true;
  } else if (format == "gptq_v2") {
    s.zeros_stored_minus_one = false;
  } else {
    fail(StatusCode::kUnsupported,
         where + ".checkpoint_format is '" + format + "': shardlm-pack reads 'gptq' and 'gptq_v2'; " + supported);
  }
  return s;
}

bool is_gptq_source(const Checkpoint& ckpt, const std::string& weight_name) {
  return ckpt.has(base_name(weight_name) + ".qweight");
}

std::vector<const SafeTensor*> source_tensors(const Checkpoint& ckpt, const std::string& weight_name) {
  if (const SafeTensor* t = ckpt.find(weight_name)) return {t};
  std::vector<const SafeTensor*> out;
  for (const char* part : {".qweight", ".scales", ".qzeros", ".g_idx"})
    if (const SafeTensor* t = ckpt.find(base_name(weight_name) + part)) out.push_back(t);
  return out;
}

void check_gptq_source(const GptqScheme& s, const Checkpoint& ckpt, const std::string& weight_name,
                       int64_t n_out, int64_t n_in) {
  const std::string base = base_name(weight_name);
  const int64_t per = 32 / s.bits;
  if (n_out % per != 0)
    fail(StatusCode::kUnsupported, ckpt.dir() + ": " + base + " has " + std::to_string(n_out) +
                                       " outputs, not a multiple of " + std::to_string(per) +
                                       ": its GPTQ zero points do not pack evenly");
  const int64_t groups = n_groups(s, n_in);
  need(ckpt, base + ".qweight", {n_in / per, n_out}, false);
  need(ckpt, base + ".scales", {groups, n_out}, true);
  const SafeTensor& zeros = need(ckpt, base + ".qzeros", {groups, n_out / per}, false);
  const uint32_t mask = (1u << s.bits) - 1;
  const uint32_t symmetric = 1u << (s.bits - 1);
  const uint32_t add = s.zeros_stored_minus_one ? 1 : 0;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t w = 0; w < n_out / per; ++w) {
      const uint32_t word = read_u32(zeros.data + static_cast<size_t>(g * (n_out / per) + w) * 4);
      for (int64_t e = 0; e < per; ++e) {
        const uint32_t z = ((word >> (s.bits * e)) & mask) + add;
        if (z != symmetric)
          fail(StatusCode::kUnsupported,
               zeros.file->path() + ": tensor '" + base + ".qzeros' has zero point " + std::to_string(z) +
                   " (output " + std::to_string(w * per + e) + ", group " + std::to_string(g) + "), not " +
                   std::to_string(symmetric) + ": asymmetric GPTQ is not supported (shardlm's int" +
                   std::to_string(s.bits) + " is symmetric)" +
                   (s.zeros_stored_minus_one ? "" : "; a v1 checkpoint stores zero - 1: is checkpoint_format right?"));
      }
    }
  if (const SafeTensor* gi = ckpt.find(base + ".g_idx")) {
    need(ckpt, base + ".g_idx", {n_in}, false);
    for (int64_t k = 0; k < n_in; ++k) {
      const int64_t g = static_cast<int32_t>(read_u32(gi->data + static_cast<size_t>(k) * 4));
      if (g != group_of(s, k))
        fail(StatusCode::kUnsupported,
             gi->file->path() + ": tensor '" + base + ".g_idx' puts input " + std::to_string(k) + " in group " +
                 std::to_string(g) + ", not " + std::to_string(group_of(s, k)) +
                 ": act-order GPTQ (desc_act true) is not supported; quantize with desc_act=False");
    }
  }
}

void decode_gptq_rows(const GptqScheme& s, DType dt, const Checkpoint& ckpt,
                      const std::string& weight_name, int64_t r0, int64_t r1, int64_t c0,
                      int64_t c1, uint8_t* out) {
  const std::string base = base_name(weight_name);
  const SafeTensor& qweight = *ckpt.find(base + ".qweight");
  const SafeTensor& scales = *ckpt.find(base + ".scales");
  const int64_t n_out = qweight.shape[1];
  const int per = 32 / s.bits;
  const uint32_t mask = (1u << s.bits) - 1;
  const int64_t gi = quant_scale_inputs(dt);  // inputs per shardlm scale
  const int64_t n = c1 - c0, nb = n / gi;
  const size_t rb = row_bytes(dt, n);
  // Tiles of 16 output rows: qweight is [n_in / per, n_out], so one 64-byte line holds a word
  // of 16 neighbouring rows.
  constexpr int64_t kTile = 16;
  std::vector<uint8_t> stored(static_cast<size_t>(kTile * n));
  std::vector<uint16_t> row_scales(static_cast<size_t>(kTile * nb));
  for (int64_t t0 = r0; t0 < r1; t0 += kTile) {
    const int64_t nt = std::min(kTile, r1 - t0);
    for (int64_t w = c0 / per; w < c1 / per; ++w) {
      const uint8_t* src = qweight.data + static_cast<size_t>(w * n_out + t0) * 4;
      const int64_t k = w * per - c0;
      for (int64_t j = 0; j < nt; ++j) {
        const uint32_t word = read_u32(src + j * 4);
        uint8_t* dst = stored.data() + j * n + k;
        for (int e = 0; e < per; ++e) dst[e] = static_cast<uint8_t>((word >> (s.bits * e)) & mask);
      }
    }
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t g = group_of(s, c0 + b * gi);
      for (int64_t j = 0; j < nt; ++j) row_scales[static_cast<size_t>(j * nb + b)] = scale_f16(scales, n_out, g, t0 + j);
    }
    for (int64_t j = 0; j < nt; ++j)
      encode_row(dt, stored.data() + j * n, row_scales.data() + j * nb, n, out + static_cast<size_t>(t0 - r0 + j) * rb);
  }
}

}  // namespace shardlm
