// For bench/gpu-kernels.cpp only: the CUDA backend's stream (to time ops with CUDA events on it).
#pragma once
#include "arch.cuh"  // cuda_runtime.h, or the HIP vendor header

#include "model/backend.h"

namespace gptoss {
// Throws if `backend` is not the CUDA backend.
cudaStream_t cuda_backend_stream(Backend& backend);
namespace cuda {
// Clusters of `splits` split-K blocks of the bm-row wgmma tile (gemm_wgmma.cu) resident at once on the current
// device (cudaOccupancyMaxActiveClusters), -1 where it cannot say or the tile is not compiled: a split count
// whose clusters exceed it runs in more than one wave.
int wgmma_split_clusters(int bm, int splits);
// The one-token decode MoE on the decode layout (moe_decode_mma.cu) with parts of its work left out, to time its
// structure: 1 without the MMA loop, 2 also without the activation fragments; 0 (the default) the real kernels.
// Modes 1 and 2 give wrong results: the kernel bench's ablation rows only.
void set_moe_decode_ablation(int mode);
}  // namespace cuda
}  // namespace gptoss
