// Lazy pipeline creation from embedded SPIR-V, with a (file-backed) pipeline cache.
#include "runtime/backend/vulkan/vk_pipelines.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "kernels/vulkan/shader_table.h"
#include "runtime/core/status.h"

namespace shardlm::vk {

Pipelines::Pipelines(const Device& device, std::string cache_path)
    : device_(device), cache_path_(std::move(cache_path)) {
  std::vector<char> initial;
  if (!cache_path_.empty()) {
    std::ifstream f(cache_path_, std::ios::binary);
    if (f) initial.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto cci = make<VkPipelineCacheCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO);
  cci.initialDataSize = initial.size();
  cci.pInitialData = initial.empty() ? nullptr : initial.data();
  if (device.fn().CreatePipelineCache(device.handle(), &cci, nullptr, &cache_) != VK_SUCCESS) {
    cci.initialDataSize = 0;  // foreign or corrupt data: start empty
    cci.pInitialData = nullptr;
    check(device.fn().CreatePipelineCache(device.handle(), &cci, nullptr, &cache_),
          "vkCreatePipelineCache");
  }
  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(uint64_t)};
  auto lci = make<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
  lci.pushConstantRangeCount = 1;
  lci.pPushConstantRanges = &range;
  check(device.fn().CreatePipelineLayout(device.handle(), &lci, nullptr, &layout_),
        "vkCreatePipelineLayout");
}

Pipelines::~Pipelines() {
  try {
    save_cache();
  } catch (...) {  // a cache that cannot be written is not an error worth dying for
  }
  const VkDeviceApi& fn = device_.fn();
  for (auto& [name, p] : pipelines_) fn.DestroyPipeline(device_.handle(), p, nullptr);
  fn.DestroyPipelineLayout(device_.handle(), layout_, nullptr);
  fn.DestroyPipelineCache(device_.handle(), cache_, nullptr);
}

VkPipeline Pipelines::get(const std::string& name) {
  auto it = pipelines_.find(name);
  if (it != pipelines_.end()) return it->second;
  const vulkan_kernels::ShaderBlob* blob = vulkan_kernels::find_shader(name);
  if (blob == nullptr) fail(StatusCode::kInternal, "vulkan: no embedded shader variant " + name);
  const VkDeviceApi& fn = device_.fn();
  auto mci = make<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
  mci.codeSize = blob->n_words * sizeof(uint32_t);
  mci.pCode = blob->words;
  VkShaderModule module = VK_NULL_HANDLE;
  check(fn.CreateShaderModule(device_.handle(), &mci, nullptr, &module),
        ("vkCreateShaderModule " + name).c_str());
  auto pci = make<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
  pci.stage =
      make<VkPipelineShaderStageCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO);
  pci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  pci.stage.module = module;
  pci.stage.pName = "main";
  pci.layout = layout_;
  VkPipeline pipeline = VK_NULL_HANDLE;
  const VkResult r =
      fn.CreateComputePipelines(device_.handle(), cache_, 1, &pci, nullptr, &pipeline);
  fn.DestroyShaderModule(device_.handle(), module, nullptr);
  check(r, ("vkCreateComputePipelines " + name).c_str());
  pipelines_.emplace(name, pipeline);
  return pipeline;
}

void Pipelines::save_cache() const {
  if (cache_path_.empty()) return;
  const VkDeviceApi& fn = device_.fn();
  size_t size = 0;
  if (fn.GetPipelineCacheData(device_.handle(), cache_, &size, nullptr) != VK_SUCCESS) return;
  std::vector<char> data(size);
  if (fn.GetPipelineCacheData(device_.handle(), cache_, &size, data.data()) != VK_SUCCESS) return;
  const std::string tmp = cache_path_ + ".tmp-" + std::to_string(getpid()) + "-" +
                          std::to_string(reinterpret_cast<uintptr_t>(this));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return;
    f.write(data.data(), static_cast<std::streamsize>(size));
    if (!f) return;
  }
  std::rename(tmp.c_str(), cache_path_.c_str());
}

}  // namespace shardlm::vk
