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
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw checkpoint_error(path, "", "cannot map " + std::to_string(f->size_) + " bytes (" + std::strerror(e) + ")");
    }
    f->data_ = static_cast<uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file referenced
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(data_, size_);
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

void MappedFile::populate(size_t offset, size_t len) const {
  if (!data_ || offset >= size_) return;
  len = std::min(len, size_ - offset);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  if (madvise(data_ + start, offset + len - start, MADV_POPULATE_READ) == 0) return;
  volatile uint8_t sink = 0;  // older kernel (< 5.14): touch one byte a page
  for (size_t p = start; p < offset + len; p += page) sink = sink + data_[p];
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
      f->populate(off, chunk);
    }
  }).detach();
}

}  // namespace gptoss
