// Read-only memory mapping of a checkpoint file. The mapping *is* the weights' memory on the CPU:
// nothing is copied, pages come from the page cache on first touch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace gptoss {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Ask the kernel to read [offset, offset+len) ahead (MADV_WILLNEED); a hint, never fails.
  void prefetch(size_t offset, size_t len) const;
  // Maps every page of the file into this process on a background thread (MADV_POPULATE_READ,
  // Linux 5.14+; else one read per page). Without it, decode steps pay a page fault the first time
  // they touch each expert. Stops early once the last reference to the mapping is gone.
  static void populate_in_background(const std::shared_ptr<MappedFile>& file);
  // Maps [offset, offset+len) into this process now (the same page-in, on the calling thread).
  void populate(size_t offset, size_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace gptoss
