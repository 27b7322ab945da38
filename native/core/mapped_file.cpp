#include "mapped_file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <cstdlib>
#include <thread>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <cstdio>
#include <string>
#include <unistd.h>

#include "error.h"

namespace gptoss {

// ---------------------------------------------------------------------------------------------
// A fault in a checkpoint mapping. A file truncated while a forward pass reads it raises SIGBUS at
// the first page past its new end; there is no safe way to unwind out of a kernel at that point.
// The process ends, but with a message that names the file and says why, and exit code 74
// (EX_IOERR), instead of an unexplained signal. Faults elsewhere go to the handler that was there
// before (Node's or V8's) or to the default action. The handler reads only this fixed table
// (atomics, no allocation, no lock) and calls only async-signal-safe functions.
// ---------------------------------------------------------------------------------------------
namespace {

constexpr int kGuardSlots = 512;
constexpr size_t kGuardPath = 1024;

struct GuardSlot {
  std::atomic<uintptr_t> base{0};  // 0: free
  std::atomic<size_t> size{0};
  std::atomic<int> fd{-1};
  char path[kGuardPath];
};

GuardSlot g_guard[kGuardSlots];
std::mutex g_guard_mutex;  // register/unregister only
std::atomic<int> g_reporting{0};  // the forward pass's threads fault together: one writes, the others wait for the exit
struct sigaction g_previous_sigbus;

void write_str(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  while (n > 0) {
    const ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

void write_u64(uint64_t v) {
  char buf[24];
  int i = 23;
  buf[i] = 0;
  do {
    buf[--i] = char('0' + v % 10);
    v /= 10;
  } while (v != 0 && i > 0);
  write_str(buf + i);
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  // si_addr means something only for a fault the kernel raised (si_code > 0), not for kill()
  for (int i = 0; i < kGuardSlots && info->si_code > 0; ++i) {
    const uintptr_t base = g_guard[i].base.load(std::memory_order_acquire);
    if (base == 0 || addr < base || addr - base >= g_guard[i].size.load(std::memory_order_relaxed)) continue;
    if (g_reporting.exchange(1) != 0)
      for (;;) pause();  // another thread is writing the message and will _exit the process
    write_str("gpt-oss-node: checkpoint file ");
    write_str(g_guard[i].path);
    struct stat st;
    const int fd = g_guard[i].fd.load(std::memory_order_relaxed);
    if (fd >= 0 && fstat(fd, &st) == 0 && uint64_t(st.st_size) < g_guard[i].size.load(std::memory_order_relaxed)) {
      write_str(" was truncated while the model was reading it (");
      write_u64(g_guard[i].size.load(std::memory_order_relaxed));
      write_str(" -> ");
      write_u64(uint64_t(st.st_size));
      write_str(" bytes)");
    } else {
      write_str(" changed on disk while the model was reading it");
    }
    write_str(": bus error reading the mapping at byte ");
    write_u64(addr - base);
    write_str(". The process cannot continue (exit code 74); keep checkpoint files unchanged while a model uses them.\n");
    _exit(74);
  }
  // not ours: the previous handler, else the default action
  const struct sigaction& prev = g_previous_sigbus;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if ((prev.sa_flags & SA_SIGINFO) == 0 && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
  // a fault re-executes the instruction on return and meets the default action; a sent signal is re-raised
  if (info->si_code <= 0) raise(sig);
}

void install_sigbus_guard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous_sigbus);
  });
}

void guard_register(const uint8_t* base, size_t size, int fd, const std::string& path) {
  install_sigbus_guard();
  std::lock_guard<std::mutex> lock(g_guard_mutex);
  for (GuardSlot& s : g_guard) {
    if (s.base.load(std::memory_order_relaxed) != 0) continue;
    const size_t n = std::min(path.size(), kGuardPath - 1);
    std::memcpy(s.path, path.data(), n);
    s.path[n] = 0;
    s.size.store(size, std::memory_order_relaxed);
    s.fd.store(fd, std::memory_order_relaxed);
    s.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    return;
  }
  // more than kGuardSlots mappings at once: this one faults with the plain signal
}

void guard_unregister(const uint8_t* base) {
  std::lock_guard<std::mutex> lock(g_guard_mutex);
  for (GuardSlot& s : g_guard)
    if (s.base.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(base)) {
      s.base.store(0, std::memory_order_release);
      return;
    }
}

}  // namespace

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
  if (f->data_) guard_register(f->data_, f->size_, fd, path);
  return f;
}

MappedFile::~MappedFile() {
  if (data_) {
    guard_unregister(data_);
    munmap(data_, size_);
  }
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
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t end = std::min(size_, offset + len), piece = readahead_bytes();
  for (size_t start = offset / page * page; start < end; start += piece)
    madvise(data_ + start, std::min(piece, end - start), MADV_WILLNEED);
}

size_t MappedFile::readahead_bytes() const {
  if (readahead_) return readahead_;
  size_t kb = 0;
  struct stat st;
  if (fd_ >= 0 && fstat(fd_, &st) == 0) {
    // /sys/dev/block/MAJ:MIN is the device or one of its partitions (whose queue is its parent's).
    const std::string dev = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    for (const char* q : {"/queue/", "/../queue/"})
      for (const char* name : {"read_ahead_kb", "max_sectors_kb"}) {
        FILE* f = std::fopen((dev + q + name).c_str(), "r");
        if (!f) continue;
        unsigned long v = 0;
        if (std::fscanf(f, "%lu", &v) == 1) kb = std::max<size_t>(kb, v);
        std::fclose(f);
      }
  }
  readahead_ = kb ? std::min<size_t>(std::max<size_t>(kb, 128), 16384) << 10 : size_t(256) << 10;
  return readahead_;
}

void MappedFile::release(size_t offset, size_t len) const {
  if (!data_ || offset >= size_ || len == 0) return;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page, end = std::min(size_, offset + len);
  madvise(data_ + start, end - start, MADV_DONTNEED);
}

bool MappedFile::resident(size_t offset, size_t len) const {
  if (!data_ || offset >= size_) return true;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page, end = std::min(size_, offset + len);
  std::vector<unsigned char> v((end - start + page - 1) / page);
  if (mincore(data_ + start, end - start, v.data()) != 0) return false;
  for (unsigned char c : v)
    if (!(c & 1)) return false;
  return true;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

bool MappedFile::read(size_t offset, void* dst, size_t len) const {
  if (offset > size_ || len > size_ - offset) return false;
  auto* p = static_cast<uint8_t*>(dst);
  while (len > 0) {
    const ssize_t n = ::pread(fd_, p, len, off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or end of file: shorter than when it was mapped
    p += n;
    offset += size_t(n);
    len -= size_t(n);
  }
  return true;
}

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
  if (file) populate_in_background({MappedRange{file, 0, file->size_}});
}

void MappedFile::populate_in_background(std::vector<MappedRange> ranges) {
  const char* env = std::getenv("GPTOSS_POPULATE");
  if (ranges.empty() || (env && env[0] == '0')) return;
  struct Weak {
    std::weak_ptr<MappedFile> file;
    size_t offset, length;
  };
  std::vector<Weak> weak;
  for (const MappedRange& r : ranges)
    if (r.file && r.file->data_) weak.push_back({r.file, r.offset, r.length});
  std::thread([weak] {
    const size_t chunk = size_t(64) << 20;  // 64 MiB: a dispose stops the walk within one chunk
    for (const Weak& r : weak)
      for (size_t off = r.offset; off < r.offset + r.length; off += chunk) {
        std::shared_ptr<MappedFile> f = r.file.lock();
        if (!f || off >= f->size_) return;
        if (!f->populate(off, std::min(chunk, r.offset + r.length - off))) return;  // truncated: touch nothing past its end
      }
  }).detach();
}

}  // namespace gptoss
