// DevicePool (pool.h).
#include <cstdio>

#include "common.cuh"
#include "policy.h"
#include "pool.h"

namespace gptoss::cuda {

DevicePool::DevicePool(int device) : device_(device), log_(env_flag("GPTOSS_CUDA_MEMLOG", false)) {}
DevicePool::~DevicePool() { release_cached(); }

std::shared_ptr<void> DevicePool::alloc(size_t bytes) {
  const size_t size = round(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_bytes_ -= size;
    }
  }
  if (!p) {
    cudaError_t err = cudaMalloc(&p, size);
    if (err != cudaSuccess && !capturing_) {
      (void)cudaGetLastError();
      release_cached();  // give cached blocks back to the driver and try once more
      err = cudaMalloc(&p, size);
    }
    if (err == cudaSuccess) note_malloc(size, bytes);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw runtime_error(std::string(kGpuApi) + " out of memory allocating " + std::to_string(bytes) + " bytes on " +
                          gpu_device_str(device_) + " (" + cudaGetErrorString(err) + ")");
    }
  }
  std::weak_ptr<DevicePool> weak = shared_from_this();
  std::shared_ptr<void> block(p, [weak, size](void* q) {
    if (auto pool = weak.lock()) pool->give_back(q, size);
    else (void)cudaFree(q);
  });
  std::lock_guard<std::mutex> lock(mu_);
  if (capture_keep_) capture_keep_->push_back(block);
  return block;
}

void DevicePool::begin_capture(std::vector<std::shared_ptr<void>>* keep) {
  std::lock_guard<std::mutex> lock(mu_);
  capture_keep_ = keep;
  capturing_ = true;
}
void DevicePool::end_capture() {
  std::lock_guard<std::mutex> lock(mu_);
  capture_keep_ = nullptr;
  capturing_ = false;
}

void DevicePool::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) return;
  (void)cudaDeviceSynchronize();
  for (auto& kv : free_)
    for (void* p : kv.second) {
      (void)cudaFree(p);
      malloced_bytes_ -= kv.first;
    }
  free_.clear();
  cached_bytes_ = 0;
}

size_t DevicePool::round(size_t b) {
  if (b == 0) b = 1;
  if (b <= (size_t(1) << 20)) {  // powers of two up to 1 MiB (min 512 B)
    size_t s = 512;
    while (s < b) s <<= 1;
    return s;
  }
  const size_t step = size_t(2) << 20;  // 2 MiB granules above
  return (b + step - 1) / step * step;
}

// GPTOSS_CUDA_MEMLOG=1: one stderr line each time the pool's cudaMalloc total grows by 256 MiB
// (pool total, cached part, the request, and the device's used memory from cudaMemGetInfo).
void DevicePool::note_malloc(size_t size, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  malloced_bytes_ += size;
  if (!log_ || malloced_bytes_ < logged_bytes_ + (size_t(256) << 20)) return;
  logged_bytes_ = malloced_bytes_;
  size_t free_b = 0, total_b = 0;
  (void)cudaMemGetInfo(&free_b, &total_b);
  std::fprintf(stderr, "[gptoss cuda pool] cudaMalloc total %.2f GiB (cached free %.2f GiB), request %zu B; device used %.2f GiB\n",
               malloced_bytes_ / 1073741824.0, cached_bytes_ / 1073741824.0, bytes, (total_b - free_b) / 1073741824.0);
}

void DevicePool::give_back(void* p, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  free_[size].push_back(p);
  cached_bytes_ += size;
}

}  // namespace gptoss::cuda
