// Reading checkpoint ranges ahead of a load-time conversion (bf16 experts quantized to MXFP4): the
// converter reads each byte once, in a known order, so the file reads can run on their own thread while
// the thread pool converts what is already in memory, instead of the pool's threads stopping at each
// page fault. The reader asks the kernel for the bytes a few chunks ahead (MADV_WILLNEED, in pieces the
// size of the device's readahead, so the disk always has queued reads) and maps each chunk
// (MADV_POPULATE_READ), at most `window` bytes ahead of what the converter has released. The converter
// waits for its chunk (the time it waited is the load's read wait), converts it, and releases it: the
// chunk's page mappings are dropped (the page cache keeps the pages; the model never reads these bytes
// again), so the process's RSS does not grow by the file's size.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mapped_file.h"

namespace gptoss {

class ReadAhead {
 public:
  using Range = MappedRange;
  // Starts the reader thread over `ranges`, in this order.
  ReadAhead(std::vector<Range> ranges, size_t window = size_t(1) << 30, size_t chunk = size_t(32) << 20);
  ~ReadAhead();  // stops the reader (within one chunk) and joins it
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The index of the range over [offset, offset + length) of `file`, or -1 when it is not one of them.
  int find(const MappedFile* file, size_t offset, size_t length) const;
  // Blocks until bytes [0, end) of range `i` are mapped; adds the seconds it waited to `waited`. false:
  // the file no longer covers them (truncated while loading). Returns at once for a position the reader
  // cannot reach before the converter releases more (a converter out of order: its page faults read).
  bool wait(int i, size_t end, double& waited);
  // The converter is done with bytes [begin, end) of range `i`: their mappings are dropped and the
  // reader may move on.
  void release(int i, size_t begin, size_t end);

 private:
  void run();
  std::vector<Range> ranges_;
  std::vector<uint64_t> start_;  // stream position of each range's first byte
  uint64_t total_ = 0;
  size_t window_, chunk_;
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t ready_ = 0, released_ = 0;
  bool failed_ = false, stop_ = false, done_ = false;
  std::thread thread_;
};

}  // namespace gptoss
