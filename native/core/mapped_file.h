// Read-only memory mapping of a checkpoint file. The mapping *is* the weights' memory on the CPU:
// nothing is copied, pages come from the page cache on first touch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gptoss {

class MappedFile;
// Bytes [offset, offset + length) of a mapped file.
struct MappedRange {
  std::shared_ptr<MappedFile> file;
  size_t offset = 0, length = 0;
};

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Ask the kernel to read [offset, offset+len) ahead (MADV_WILLNEED); a hint, never fails. The kernel
  // reads at most readahead_bytes() a call: longer ranges go in pieces of that size.
  void prefetch(size_t offset, size_t len) const;
  // What one MADV_WILLNEED reads at most on this file's block device: the larger of its readahead and
  // its largest request (queue/read_ahead_kb, queue/max_sectors_kb); 256 KiB when sysfs does not say.
  size_t readahead_bytes() const;
  // Drops this process's mappings of the pages of [offset, offset+len) (MADV_DONTNEED; the page cache
  // keeps them, a later read maps them again): for bytes converted at load, which the model never reads.
  void release(size_t offset, size_t len) const;
  // Whether every page of [offset, offset+len) is in the page cache now (mincore); false when unknown.
  bool resident(size_t offset, size_t len) const;
  // Maps every page of the file into this process on a background thread (MADV_POPULATE_READ,
  // Linux 5.14+; else one read per page). Without it, decode steps pay a page fault the first time
  // they touch each expert. Stops early once the last reference to the mapping is gone, and when
  // the file no longer covers the mapping (a truncated file: the thread never touches such a page).
  static void populate_in_background(const std::shared_ptr<MappedFile>& file);
  // The same over these ranges only, in order, on one thread (the tensors a model runs from in place).
  static void populate_in_background(std::vector<MappedRange> ranges);
  // Maps [offset, offset+len) into this process now (the same page-in, on the calling thread).
  // false: the file no longer covers the mapping (truncated); nothing past its end was touched.
  bool populate(size_t offset, size_t len) const;
  // Copies bytes [offset, offset+len) of the file into `dst` (pread: through the page cache, without
  // mapping any page into this process). false: the file ends before offset+len (truncated) or the
  // read failed. What a load-time conversion reads its source with: each converting thread copies its
  // piece into its own buffer, instead of all threads faulting the shared mapping in (page-table
  // locks, fault-around and the unmapping's TLB flushes: the system time of a 16-thread load).
  bool read(size_t offset, void* dst, size_t len) const;

  // How the file differs from when it was mapped (shorter, or written since: its mtime or size
  // moved), in words; "" when it is unchanged. Reading a page past a truncated end raises SIGBUS,
  // and a file written in place changes the weights under the model, so the model asks before each
  // forward pass (one fstat a file).
  std::string changed() const;

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;  // kept open for changed()
  int64_t mtime_ns_ = 0;
  mutable size_t readahead_ = 0;  // readahead_bytes(), once known
};

}  // namespace gptoss
