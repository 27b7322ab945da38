// The three cub facilities sample.cu uses, on rocPRIM (the HIP build's counterpart of cub; hipCUB, the
// usual cub-named wrapper, is not packaged by Debian, librocprim-dev is). Same names and call shapes
// as cub's, so sample.cu stays one source: only its #include differs.
//   cub::BlockReduce<T, N>(tmp).Reduce(x, op)           -> rocprim::block_reduce<T, N>::reduce
//   cub::BlockScan<T, N>(tmp).ExclusiveSum(x, excl, agg) -> rocprim::block_scan<T, N>::exclusive_scan
//   cub::DeviceRadixSort::SortPairsDescending(...)       -> rocprim::radix_sort_pairs_desc (stable, LSD)
#pragma once
#include <rocprim/block/block_reduce.hpp>
#include <rocprim/block/block_scan.hpp>
#include <rocprim/device/device_radix_sort.hpp>

namespace cub {

template <typename T, int kThreads>
class BlockReduce {
  using Impl = rocprim::block_reduce<T, kThreads>;

 public:
  using TempStorage = typename Impl::storage_type;
  __device__ explicit BlockReduce(TempStorage& tmp) : tmp_(tmp) {}
  // The block's reduction, valid in thread 0 (as cub's).
  template <typename Op>
  __device__ T Reduce(const T& x, Op op) {
    T out;
    Impl().reduce(x, out, tmp_, op);
    return out;
  }

 private:
  TempStorage& tmp_;
};

template <typename T, int kThreads>
class BlockScan {
  using Impl = rocprim::block_scan<T, kThreads>;

 public:
  using TempStorage = typename Impl::storage_type;
  __device__ explicit BlockScan(TempStorage& tmp) : tmp_(tmp) {}
  // excl = sum of x over the threads before this one; aggregate = the block's sum (every thread).
  __device__ void ExclusiveSum(const T& x, T& excl, T& aggregate) {
    Impl().exclusive_scan(x, excl, T(0), aggregate, tmp_, rocprim::plus<T>());
  }

 private:
  TempStorage& tmp_;
};

struct DeviceRadixSort {
  template <typename K, typename V>
  static hipError_t SortPairsDescending(void* tmp, size_t& bytes, const K* keys_in, K* keys_out, const V* values_in,
                                        V* values_out, int n, int begin_bit = 0, int end_bit = int(sizeof(K) * 8),
                                        hipStream_t stream = nullptr) {
    return rocprim::radix_sort_pairs_desc(tmp, bytes, keys_in, keys_out, values_in, values_out, unsigned(n),
                                          unsigned(begin_bit), unsigned(end_bit), stream);
  }
};

}  // namespace cub
