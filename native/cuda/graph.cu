// StepGraphs (graph.h).
#include "graph.h"

namespace gptoss::cuda {

void StepGraphs::run(uint64_t shape_key, void* owner, cudaStream_t stream, DevicePool& pool,
                     std::recursive_mutex& op_mu, bool& capturing, const std::function<void()>& step) {
  const bool bucket = (shape_key & kBatchBucket) != 0;  // a batch's decode bucket: any size is captured
  if (!enabled_ || (!bucket && (shape_key >> 32) > uint64_t(kMaxTokens))) return step();
  std::unique_lock<std::mutex> lock(mu_);
  const auto key = std::make_pair(owner, shape_key);
  auto it = graphs_.find(key);
  if (it != graphs_.end()) {
    if (!it->second.exec) {
      lock.unlock();
      return step();
    }
    GPTOSS_CUDA_CHECK(cudaGraphLaunch(it->second.exec, stream));
    return;
  }
  Entry& entry = graphs_[key];
  std::lock_guard<std::recursive_mutex> ops_lock(op_mu);  // no other thread's op inside the capture
  pool.begin_capture(&entry.keep);
  GPTOSS_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  capturing = true;
  try {
    step();
  } catch (...) {
    cudaGraph_t g = nullptr;
    (void)cudaStreamEndCapture(stream, &g);
    if (g) (void)cudaGraphDestroy(g);
    capturing = false;
    pool.end_capture();
    (void)cudaGetLastError();
    graphs_.erase(key);
    throw;
  }
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamEndCapture(stream, &graph);
  capturing = false;
  pool.end_capture();
  if (err != cudaSuccess || !graph) {
    (void)cudaGetLastError();
    entry.keep.clear();
    lock.unlock();
    return step();  // entry.exec stays null: this key runs eagerly from now on
  }
  err = cudaGraphInstantiate(&entry.exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    entry.exec = nullptr;
    entry.keep.clear();
    lock.unlock();
    return step();
  }
  GPTOSS_CUDA_CHECK(cudaGraphLaunch(entry.exec, stream));
}

void StepGraphs::forget(void* owner) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = graphs_.begin(); it != graphs_.end();) {
    if (it->first.first == owner) {
      if (it->second.exec) (void)cudaGraphExecDestroy(it->second.exec);
      it = graphs_.erase(it);  // keep-alive blocks return to the pool; later work is stream-ordered
    } else {
      ++it;
    }
  }
}

void StepGraphs::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& kv : graphs_)
    if (kv.second.exec) (void)cudaGraphExecDestroy(kv.second.exec);
  graphs_.clear();
}

}  // namespace gptoss::cuda
