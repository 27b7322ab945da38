#include "mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

namespace gptoss {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: a FIFO put in the file's place must not block a thread-pool thread forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw checkpoint_error(path, "", std::string(errno == ENOENT ? "not found" : "cannot open") + " (" + std::strerror(errno) + ")");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw checkpoint_error(path, "", std::string("cannot stat (") + std::strerror(e) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw checkpoint_error(path, "", "is not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(st.st_size);
  f->mtime_ns_ = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw checkpoint_error(path, "", "cannot map " + std::to_string(f->size_) + " bytes (" + std::strerror(e) + ")");
    }
    f->data_ = static_cast<uint8_t*>(p);
  }
  f->fd_ = fd;
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

std::string MappedFile::changed() const {
  struct stat st;
  if (fd_ < 0 || fstat(fd_, &st) != 0) return "";
  const int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (size_t(st.st_size) < size_)
    return "was truncated after it was loaded (" + std::to_string(size_) + " -> " + std::to_string(st.st_size) + " bytes)";
  if (size_t(st.st_size) != size_ || mtime != mtime_ns_) return "was written after it was loaded";
  return "";
}

void MappedFile::prefetch(size_t offset, size_t len) const {
  if (!data_ || offset >= size_) return;
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t start = offset / page * page;
  size_t end = std::min(size_, offset + len);
  madvise(data_ + start, end - start, MADV_WILLNEED);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

bool MappedFile::populate(size_t offset, size_t len) const {
  if (!data_ || offset >= size_) return true;
  len = std::min(len, size_ - offset);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  if (madvise(data_ + start, offset + len - start, MADV_POPULATE_READ) == 0) return true;
  // EFAULT: a page would have raised SIGBUS (the file was truncated): touch nothing.
  if (errno != EINVAL) return false;
  // EINVAL: a kernel older than 5.14: touch one byte a page, only while the file still covers the
  // mapping (a truncation between this check and the touch remains a window on such kernels).
  struct stat st;
  if (fd_ >= 0 && (fstat(fd_, &st) != 0 || size_t(st.st_size) < size_)) return false;
  volatile uint8_t sink = 0;
  for (size_t p = start; p < offset + len; p += page) sink = sink + data_[p];
  return true;
}

void MappedFile::populate_in_background(const std::shared_ptr<MappedFile>& file) {
  const char* env = std::getenv("GPTOSS_POPULATE");
  if (!file || !file->data_ || (env && env[0] == '0')) return;
  std::weak_ptr<MappedFile> weak = file;
  std::thread([weak] {
    const size_t chunk = size_t(64) << 20;  // 64 MiB: a dispose stops the walk within one chunk
    for (size_t off = 0;; off += chunk) {
      std::shared_ptr<MappedFile> f = weak.lock();
      if (!f || off >= f->size_) return;
      if (!f->populate(off, chunk)) return;  // the file was truncated: touch nothing past its end
    }
  }).detach();
}

}  // namespace gptoss
