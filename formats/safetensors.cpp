// Safetensors parsing and validation; see safetensors.h for the rules enforced.
#include "formats/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/core/status.h"

namespace shardlm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Element size of every dtype the safetensors format defines; 0 when unknown.
// Sub-byte types (F4, F6) are known but unsupported: reported as such.
size_t safetensors_dtype_bits(const std::string& d) {
  static const std::map<std::string, size_t> bits = {
      {"BOOL", 8},      {"U8", 8},        {"I8", 8},      {"F8_E5M2", 8}, {"F8_E4M3", 8},
      {"F8_E8M0", 8},   {"I16", 16},      {"U16", 16},    {"F16", 16},    {"BF16", 16},
      {"I32", 32},      {"U32", 32},      {"F32", 32},    {"I64", 64},    {"U64", 64},
      {"F64", 64},      {"C64", 64},      {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6},
  };
  auto it = bits.find(d);
  return it == bits.end() ? 0 : it->second;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  fail(StatusCode::kFormat, path + ": " + what);
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

int64_t SafeTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(path) {
  const uint64_t file_size = map_.size();
  if (file_size < 8) bad(path, "file is " + std::to_string(file_size) + " bytes, too small for a safetensors header (truncated?)");
  const uint64_t header_len = read_le64(map_.data());
  if (header_len > kSafetensorsMaxHeader)
    bad(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit (corrupt file?)");
  if (header_len > file_size - 8)
    bad(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                  std::to_string(file_size) + " bytes; truncated?)");
  const char* hbegin = reinterpret_cast<const char*>(map_.data() + 8);
  json header;
  try {
    header = json::parse(hbegin, hbegin + header_len);  // rejects invalid UTF-8
  } catch (const json::exception& e) {
    bad(path, std::string("header is not valid UTF-8 JSON: ") + e.what());
  }
  if (!header.is_object()) bad(path, "header is not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_len = file_size - data_start;
  for (auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) bad(path, "__metadata__ is not an object");
      for (auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad(path, "__metadata__." + mk + " is not a string");
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!value.is_object()) bad(path, where + ": entry is not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) bad(path, where + ": missing string field 'dtype'");
    if (!value.contains("shape") || !value["shape"].is_array()) bad(path, where + ": missing array field 'shape'");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      bad(path, where + ": 'data_offsets' must be an array of two integers");
    SafeTensor t;
    t.name = key;
    t.dtype_name = value["dtype"].get<std::string>();
    const size_t bits = safetensors_dtype_bits(t.dtype_name);
    if (bits == 0) bad(path, where + ": unknown dtype '" + t.dtype_name + "'");
    t.dtype = parse_dtype(t.dtype_name);
    if (t.dtype_name != "F32" && t.dtype_name != "F16" && t.dtype_name != "BF16") t.dtype.reset();
    unsigned __int128 numel = 1;
    for (auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) bad(path, where + ": shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 62)) bad(path, where + ": shape dimension too large");
      t.shape.push_back(static_cast<int64_t>(dim));
      numel *= dim;
      if (numel > (static_cast<unsigned __int128>(1) << 64)) bad(path, where + ": shape product overflows");
    }
    for (auto& o : value["data_offsets"])
      if (!o.is_number_unsigned()) bad(path, where + ": data_offsets must be non-negative integers");
    const uint64_t b = value["data_offsets"][0].get<uint64_t>();
    const uint64_t e = value["data_offsets"][1].get<uint64_t>();
    if (e < b) bad(path, where + ": data_offsets end " + std::to_string(e) + " < begin " + std::to_string(b));
    const unsigned __int128 nbits = numel * bits;
    if (nbits % 8 != 0) bad(path, where + ": shape does not fill whole bytes for dtype " + t.dtype_name);
    if (nbits / 8 != e - b)
      bad(path, where + ": shape and dtype give " + std::to_string(static_cast<uint64_t>(nbits / 8)) +
                    " bytes but data_offsets span " + std::to_string(e - b));
    if (e > data_len)
      bad(path, where + ": data_offsets end " + std::to_string(e) + " is past the data section (" +
                    std::to_string(data_len) + " bytes; file truncated?)");
    t.begin = data_start + b;
    t.end = data_start + e;
    t.data = map_.data() + t.begin;
    t.file = this;
    tensors_.push_back(std::move(t));
  }

  // Contiguity: sorted by offset, each tensor starts where the previous ended, last ends at EOF.
  std::vector<const SafeTensor*> by_offset;
  for (auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expect = data_start;
  for (auto* t : by_offset) {
    if (t->begin < expect)
      bad(path, "tensor '" + t->name + "' overlaps the previous tensor (data_offsets begin " +
                    std::to_string(t->begin - data_start) + " < " + std::to_string(expect - data_start) + ")");
    if (t->begin > expect)
      bad(path, "tensor '" + t->name + "' leaves a gap before it (data_offsets begin " +
                    std::to_string(t->begin - data_start) + ", expected " + std::to_string(expect - data_start) + ")");
    expect = t->end;
  }
  if (expect != file_size)
    bad(path, "data section is " + std::to_string(data_len) + " bytes but tensors cover " +
                  std::to_string(expect - data_start) + " (trailing bytes or truncated file)");
  std::sort(tensors_.begin(), tensors_.end(), [](auto& a, auto& b) { return a.name < b.name; });
}

const SafeTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const SafeTensor& t, std::string_view n) { return t.name < n; });
  return (it != tensors_.end() && it->name == name) ? &*it : nullptr;
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(StatusCode::kIo, dir + ": not a directory (expected a Hugging Face checkpoint directory)");
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> file_names;
  json index;
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path);
    try {
      index = json::parse(in);
    } catch (const json::exception& e) {
      fail(StatusCode::kFormat, index_path.string() + ": not valid JSON: " + e.what());
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      fail(StatusCode::kFormat, index_path.string() + ": missing object field 'weight_map'");
    for (auto& [tensor, file] : index["weight_map"].items()) {
      if (!file.is_string()) fail(StatusCode::kFormat, index_path.string() + ": weight_map['" + tensor + "'] is not a string");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        fail(StatusCode::kFormat, index_path.string() + ": weight_map['" + tensor + "'] names '" + f + "', which is not a file in the checkpoint directory");
      if (std::find(file_names.begin(), file_names.end(), f) == file_names.end()) file_names.push_back(f);
    }
    for (auto& f : file_names)
      if (!fs::is_regular_file(fs::path(dir) / f, ec))  // (error_code: a name too long is "absent")
        fail(StatusCode::kIo, index_path.string() + ": names file '" + f + "', which does not exist in " + dir);
  } else if (fs::exists(fs::path(dir) / "model.safetensors", ec)) {
    file_names.push_back("model.safetensors");
  } else {
    for (auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".safetensors") file_names.push_back(e.path().filename().string());
    std::sort(file_names.begin(), file_names.end());
  }
  if (file_names.empty())
    fail(StatusCode::kIo, dir + ": no *.safetensors files (shardlm reads safetensors checkpoints; convert .bin/.pt first)");

  for (auto& f : file_names) {
    files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / f).string()));
    for (auto& t : files_.back()->tensors()) {
      auto [it, inserted] = by_name_.emplace(t.name, &t);
      if (!inserted)
        fail(StatusCode::kFormat, dir + ": tensor '" + t.name + "' appears in both " + it->second->file->path() + " and " + f);
    }
  }
  if (!index.is_null()) {
    for (auto& [tensor, file] : index["weight_map"].items()) {
      auto it = by_name_.find(tensor);
      if (it == by_name_.end())
        fail(StatusCode::kFormat, index_path.string() + ": tensor '" + tensor + "' is listed in '" + file.get<std::string>() + "' but that file does not contain it");
      if (fs::path(it->second->file->path()).filename() != file.get<std::string>())
        fail(StatusCode::kFormat, index_path.string() + ": tensor '" + tensor + "' is listed in '" + file.get<std::string>() + "' but found in " + it->second->file->path());
    }
  }
}

const SafeTensor* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (auto& [n, t] : by_name_) out.push_back(n);
  return out;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (auto& f : files_) total += f->mapping().size();
  return total;
}

}  // namespace shardlm
