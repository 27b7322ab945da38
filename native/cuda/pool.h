// Caching device allocator of one backend. cudaMalloc/cudaFree are slow and cudaFree synchronizes the
// device, and the forward pass allocates per call; freed blocks go back to a free list keyed by
// rounded size. Reuse is safe without events because every kernel of a backend runs on its one
// stream. While a graph is being captured, every block handed out is also recorded in that graph's
// keep-alive list: a replay writes those addresses, so they must not return to the pool (and be
// handed to someone else) before the graph is destroyed.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace gptoss::cuda {

class DevicePool : public std::enable_shared_from_this<DevicePool> {
 public:
  explicit DevicePool(int device);
  ~DevicePool();
  // A block of at least `bytes` on the pool's device; returned to the pool when the last owner drops it.
  std::shared_ptr<void> alloc(size_t bytes);
  void begin_capture(std::vector<std::shared_ptr<void>>* keep);
  void end_capture();
  // Give every cached block back to the driver (synchronizes the device).
  void release_cached();

 private:
  static size_t round(size_t b);
  void note_malloc(size_t size, size_t bytes);
  void give_back(void* p, size_t size);

  int device_;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
  size_t malloced_bytes_ = 0, logged_bytes_ = 0;
  bool log_ = false;
  std::vector<std::shared_ptr<void>>* capture_keep_ = nullptr;
  bool capturing_ = false;
};

}  // namespace gptoss::cuda
