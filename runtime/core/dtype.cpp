// Scalar dtype helpers: names, parsing, f16 conversion and bulk conversion.
#include "dtype.h"

#include "runtime/core/status.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

namespace shardlm {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kInt8: return 1;
    case DType::kInt4:
    case DType::kInt4G128:
      return 1;
    case DType::kF8E4M3:
      return 1;
  }
  return 0;
}

size_t row_bytes(DType t, int64_t n) {
  if (is_quantized(t))  // the values, then one f16 scale per quant_scale_inputs(t)
    return static_cast<size_t>((is_int4(t) ? n / 2 : n) + n / quant_scale_inputs(t) * 2);
  return static_cast<size_t>(n) * dtype_size(t);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kInt8: return "int8";
    case DType::kInt4:
      return "int4";
    case DType::kF8E4M3:
      return "f8e4m3";
    case DType::kInt4G128:
      return "int4g128";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
  std::string s(name);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "f32" || s == "float32" || s == "fp32" || s == "float") return DType::kF32;
  if (s == "f16" || s == "float16" || s == "fp16" || s == "half") return DType::kF16;
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  if (s == "f8e4m3" || s == "fp8" || s == "fp8_e4m3" || s == "float8_e4m3fn") return DType::kF8E4M3;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, sizeof bits);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;            // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;           // overflow (incl. inf) after rounding
  if (abs < 0x38800000u) {                                 // subnormal or zero in f16
    if (abs < 0x33000000u) return sign;                    // rounds to zero
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;                      // 14 + (113 - exp) - 1
    uint32_t half_mant = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
    return sign | static_cast<uint16_t>(half_mant);
  }
  uint32_t v = abs - 0x38000000u;  // rebias exponent 127 -> 15
  v += 0xfffu + ((v >> 13) & 1u);  // round to nearest even
  return sign | static_cast<uint16_t>(v >> 13);
}

uint8_t f32_to_f8e4m3(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7fu;   // NaN
  if (abs >= 0x43e00000u) return sign | 0x7eu;  // >= 448 (incl. inf): saturate to 448
  if (abs < 0x3c800000u) {                      // below 2^-6: subnormal steps of 2^-9
    float a;
    std::memcpy(&a, &abs, sizeof a);
    return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));  // 0..8 (8 = 2^-6, normal)
  }
  uint32_t v = abs + 0x7ffffu + ((abs >> 20) & 1u);  // round the mantissa to 3 bits, even ties
  return sign | static_cast<uint8_t>((v >> 20) - (120u << 3));  // rebias exponent 127 -> 7
}

float f8e4m3_to_f32(uint8_t b) {
  const int exp = (b >> 3) & 0xf, mant = b & 7;
  float v;
  if ((b & 0x7f) == 0x7f) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -9);
  } else {
    v = std::ldexp(static_cast<float>(8 + mant), exp - 10);
  }
  return (b & 0x80) ? -v : v;
}

void convert_dtype(const void* src, DType from, void* dst, DType to, size_t n) {
  if (from != to && (is_quantized(from) || is_quantized(to))) {
    fail(StatusCode::kInternal, std::string("convert_dtype: ") + dtype_name(from) + " -> " +
                                    dtype_name(to) + " is a quantization (runtime/core/quant.h)");
  }
  if (from == to) {
    std::memcpy(dst, src, n * dtype_size(from));
    return;
  }
  auto load = [&](size_t i) -> float {
    switch (from) {
      case DType::kF32: return static_cast<const float*>(src)[i];
      case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::kF8E4M3:
        return f8e4m3_to_f32(static_cast<const uint8_t*>(src)[i]);
      case DType::kInt8:
      case DType::kInt4:
      case DType::kInt4G128:
        break;
    }
    return 0.f;
  };
  for (size_t i = 0; i < n; ++i) {
    const float v = load(i);
    switch (to) {
      case DType::kF32: static_cast<float*>(dst)[i] = v; break;
      case DType::kF16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(v); break;
      case DType::kBF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v); break;
      case DType::kF8E4M3:
        static_cast<uint8_t*>(dst)[i] = f32_to_f8e4m3(v);
        break;
      case DType::kInt8:
      case DType::kInt4:
      case DType::kInt4G128:
        break;
    }
  }
}

}  // namespace shardlm
