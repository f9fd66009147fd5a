// Memory-plan arithmetic, formatting and byte-size parsing (formulas: docs/memory-plan.md).
#include "formats/memory_plan.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/core/status.h"

namespace shardlm {

uint64_t MemoryPlan::kv_budget_bytes() const {
  const uint64_t used = weight_bytes + workspace_bytes + reserve_bytes;
  return budget_bytes > used ? budget_bytes - used : 0;
}

std::string MemoryPlan::shortfall_message() const {
  if (fits) return {};
  std::ostringstream m;
  const uint64_t fixed = weight_bytes + workspace_bytes + reserve_bytes;
  if (fixed > budget_bytes) {
    m << "weights " << format_bytes(weight_bytes) << " + workspace " << format_bytes(workspace_bytes)
      << " + reserve " << format_bytes(reserve_bytes) << " = " << format_bytes(fixed) << " exceed the budget "
      << format_bytes(budget_bytes) << " (" << format_bytes(device_total_bytes) << " x " << mem_fraction
      << " on " << target << "); use more tensor-parallel ranks, a smaller --dtype, or raise --mem-fraction";
  } else {
    m << "n_ctx " << n_ctx << " needs " << format_bytes(kv_bytes_per_token * static_cast<uint64_t>(n_ctx))
      << " of KV, " << format_bytes(kv_budget_bytes()) << " left at fraction " << mem_fraction << " on " << target
      << "; lower --n-ctx or raise --mem-fraction";
  }
  return m.str();
}

uint64_t kv_bytes_per_token(const ModelConfig& c, const ParallelLayout& p, DType kv_dtype) {
  return 2ull * static_cast<uint64_t>(c.n_layer) * static_cast<uint64_t>(p.n_head_kv_local) *
         static_cast<uint64_t>(c.head_dim) * dtype_size(kv_dtype);
}

uint64_t workspace_bytes(const ModelConfig& c, const ParallelLayout& p, int64_t max_batch_tokens,
                         int64_t max_batch) {
  const uint64_t t = static_cast<uint64_t>(max_batch_tokens);
  const uint64_t qkv_local = static_cast<uint64_t>((p.n_head_local + 2 * p.n_head_kv_local) * c.head_dim);
  const uint64_t attn_local = static_cast<uint64_t>(p.n_head_local * c.head_dim);
  // Per token, f32: residual + normed input + layer output (3 * n_embd), fused qkv, attention
  // output, gate_up (2 * n_ff_local) and the SwiGLU product (n_ff_local).
  const uint64_t per_token =
      3 * static_cast<uint64_t>(c.n_embd) + qkv_local + attn_local + 3 * static_cast<uint64_t>(p.n_ff_local);
  const uint64_t activations = t * per_token * 4;
  // Logits of the last position of each sequence: local vocab slice + gathered full vocab.
  const uint64_t logits = static_cast<uint64_t>(max_batch) * static_cast<uint64_t>(c.n_vocab + p.n_vocab_local) * 4;
  // One all-reduce buffer of n_tokens x n_embd f32.
  const uint64_t comm = t * static_cast<uint64_t>(c.n_embd) * 4;
  return activations + logits + comm;
}

MemoryPlan compute_memory_plan(const ModelConfig& c, const ParallelLayout& p, uint64_t weight_bytes,
                               const PlanOptions& o) {
  if (!(o.mem_fraction > 0 && o.mem_fraction <= 1))
    fail(StatusCode::kInvalidArg, "--mem-fraction must be in (0, 1], got " + std::to_string(o.mem_fraction));
  if (o.max_batch < 1) fail(StatusCode::kInvalidArg, "--max-batch must be >= 1");
  if (o.max_batch_tokens < 1) fail(StatusCode::kInvalidArg, "--max-batch-tokens must be >= 1");
  if (o.n_ctx < 0) fail(StatusCode::kInvalidArg, "n_ctx (--n-ctx) must be >= 0");
  MemoryPlan m;
  m.target = o.target;
  m.device_total_bytes = o.device_total_bytes;
  m.mem_fraction = o.mem_fraction;
  m.budget_bytes = static_cast<uint64_t>(std::floor(static_cast<double>(o.device_total_bytes) * o.mem_fraction));
  m.weight_bytes = weight_bytes;
  m.n_ctx = o.n_ctx > 0 ? o.n_ctx : c.max_position_embeddings;
  m.max_batch = o.max_batch;
  m.max_batch_tokens = o.max_batch_tokens;
  m.workspace_bytes = workspace_bytes(c, p, o.max_batch_tokens, o.max_batch);
  m.reserve_bytes = o.reserve_bytes;
  m.kv_dtype = o.kv_dtype;
  m.kv_bytes_per_token = kv_bytes_per_token(c, p, o.kv_dtype);
  m.kv_tokens = static_cast<int64_t>(m.kv_budget_bytes() / m.kv_bytes_per_token);
  m.fits = weight_bytes + m.workspace_bytes + m.reserve_bytes <= m.budget_bytes && m.kv_tokens >= m.n_ctx;
  return m;
}

std::string format_bytes(uint64_t b) {
  char buf[64];
  const double v = static_cast<double>(b);
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", v / (1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", v / (1ull << 20));
  else if (b >= (1ull << 10)) std::snprintf(buf, sizeof buf, "%.1f KiB", v / (1ull << 10));
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

uint64_t parse_bytes(const std::string& text, const std::string& what) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string num = text.substr(0, i), unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(num, &used);
    if (used != num.size()) throw std::invalid_argument(num);
  } catch (const std::exception&) {
    fail(StatusCode::kInvalidArg, what + ": cannot read '" + text + "' as a size (examples: 80GiB, 24GB, 512MiB)");
  }
  double mul = 0;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k" || unit == "kib") mul = 1024.0;
  else if (unit == "m" || unit == "mib") mul = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib") mul = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tib") mul = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb") mul = 1e3;
  else if (unit == "mb") mul = 1e6;
  else if (unit == "gb") mul = 1e9;
  else if (unit == "tb") mul = 1e12;
  else fail(StatusCode::kInvalidArg, what + ": unknown size unit '" + unit + "' in '" + text + "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
  const double bytes = v * mul;
  if (!(bytes >= 0) || bytes > 1.8e19) fail(StatusCode::kInvalidArg, what + ": size '" + text + "' out of range");
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string format_plan_table(const std::vector<MemoryPlan>& plans) {
  std::ostringstream o;
  if (plans.empty()) return {};
  const MemoryPlan& f = plans.front();
  o << "memory plan: " << f.target << ", " << format_bytes(f.device_total_bytes) << " x " << f.mem_fraction
    << " = " << format_bytes(f.budget_bytes) << " per rank; n_ctx " << f.n_ctx << ", max_batch "
    << f.max_batch << ", max_batch_tokens " << f.max_batch_tokens << ", kv " << dtype_name(f.kv_dtype) << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-5s %12s %12s %12s %12s %14s %12s %10s %s\n", "rank", "weights", "workspace",
                "reserve", "kv left", "kv/token", "kv tokens", "seqs@max", "fits");
  o << line;
  for (size_t r = 0; r < plans.size(); ++r) {
    const MemoryPlan& p = plans[r];
    const int64_t seqs = p.n_ctx > 0 ? p.kv_tokens / p.n_ctx : 0;
    std::snprintf(line, sizeof line, "%-5zu %12s %12s %12s %12s %14s %12lld %10lld %s\n", r,
                  format_bytes(p.weight_bytes).c_str(), format_bytes(p.workspace_bytes).c_str(),
                  format_bytes(p.reserve_bytes).c_str(), format_bytes(p.kv_budget_bytes()).c_str(),
                  format_bytes(p.kv_bytes_per_token).c_str(), static_cast<long long>(p.kv_tokens),
                  static_cast<long long>(seqs), p.fits ? "yes" : "NO");
    o << line;
  }
  for (size_t r = 0; r < plans.size(); ++r)
    if (!plans[r].fits) o << "rank " << r << ": " << plans[r].shortfall_message() << "\n";
  return o.str();
}

std::string plan_to_json(const std::vector<MemoryPlan>& plans) {
  nlohmann::json arr = nlohmann::json::array();
  for (auto& p : plans) {
    arr.push_back({{"target", p.target},
                   {"device_total_bytes", p.device_total_bytes},
                   {"mem_fraction", p.mem_fraction},
                   {"budget_bytes", p.budget_bytes},
                   {"weight_bytes", p.weight_bytes},
                   {"workspace_bytes", p.workspace_bytes},
                   {"reserve_bytes", p.reserve_bytes},
                   {"kv_bytes_per_token", p.kv_bytes_per_token},
                   {"kv_tokens", p.kv_tokens},
                   {"kv_dtype", dtype_name(p.kv_dtype)},
                   {"n_ctx", p.n_ctx},
                   {"max_batch", p.max_batch},
                   {"max_batch_tokens", p.max_batch_tokens},
                   {"fits", p.fits},
                   {"shortfall", p.shortfall_message()}});
  }
  return nlohmann::json{{"ranks", arr}}.dump(2);
}

}  // namespace shardlm
