#include "read_ahead.h"

#include <algorithm>
#include <chrono>

namespace gptoss {

ReadAhead::ReadAhead(std::vector<Range> ranges, size_t window, size_t chunk)
    : ranges_(std::move(ranges)), window_(std::max(window, chunk)), chunk_(chunk) {
  for (const Range& r : ranges_) {
    start_.push_back(total_);
    total_ += r.length;
  }
  if (total_) thread_ = std::thread([this] { run(); });
}

ReadAhead::~ReadAhead() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int ReadAhead::find(const MappedFile* file, size_t offset, size_t length) const {
  for (size_t i = 0; i < ranges_.size(); ++i)
    if (ranges_[i].file.get() == file && ranges_[i].offset == offset && ranges_[i].length == length) return int(i);
  return -1;
}

// The reader: chunk by chunk through the stream. Each step asks for the chunk `lead` chunks ahead
// (so the device has queued reads while this one is mapped), then maps this chunk, which waits for
// its reads to finish.
void ReadAhead::run() {
  constexpr int kLead = 4;
  // stream position -> (range, offset in it) pieces of one chunk
  auto for_chunk = [&](uint64_t pos, auto&& fn) {
    const uint64_t end = std::min(total_, pos + chunk_);
    size_t i = std::upper_bound(start_.begin(), start_.end(), pos) - start_.begin() - 1;
    for (; i < ranges_.size() && start_[i] < end; ++i) {
      const uint64_t b = std::max(pos, start_[i]), e = std::min(end, start_[i] + ranges_[i].length);
      if (e > b && !fn(ranges_[i], ranges_[i].offset + size_t(b - start_[i]), size_t(e - b))) return false;
    }
    return true;
  };
  auto ask = [&](uint64_t pos) {
    if (pos < total_) for_chunk(pos, [](const Range& r, size_t off, size_t len) { r.file->prefetch(off, len); return true; });
  };
  for (int k = 0; k < kLead; ++k) ask(uint64_t(k) * chunk_);
  for (uint64_t pos = 0; pos < total_; pos += chunk_) {
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return stop_ || pos + chunk_ <= released_ + window_; });
      if (stop_) break;
    }
    ask(pos + kLead * chunk_);
    // Pages already in the page cache are left to the converting threads' page faults (mapped in
    // parallel, 16 pages a fault); the rest are mapped here, which waits for their reads.
    const bool ok = for_chunk(pos, [](const Range& r, size_t off, size_t len) { return r.file->resident(off, len) || r.file->populate(off, len); });
    {
      std::lock_guard<std::mutex> lock(m_);
      if (!ok) {
        failed_ = true;
        break;
      }
      ready_ = std::min(total_, pos + chunk_);
    }
    cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(m_);
    done_ = true;
  }
  cv_.notify_all();
}

bool ReadAhead::wait(int i, size_t end, double& waited) {
  if (i < 0 || size_t(i) >= ranges_.size()) return true;
  const uint64_t want = start_[i] + std::min(end, ranges_[i].length);
  std::unique_lock<std::mutex> lock(m_);
  if (ready_ >= want) return true;
  const auto t0 = std::chrono::steady_clock::now();
  cv_.wait(lock, [&] { return ready_ >= want || done_ || failed_ || want > released_ + window_; });
  waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ready_ >= want || !failed_;
}

void ReadAhead::release(int i, size_t begin, size_t end) {
  if (i < 0 || size_t(i) >= ranges_.size()) return;
  const Range& r = ranges_[i];
  end = std::min(end, r.length);
  if (end > begin) r.file->release(r.offset + begin, end - begin);
  {
    std::lock_guard<std::mutex> lock(m_);
    released_ = std::max<uint64_t>(released_, start_[i] + end);
  }
  cv_.notify_all();
}

}  // namespace gptoss
