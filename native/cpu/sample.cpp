// Token sampling from one logit row: temperature, then top-k, top-p, min-p (HF's processor order),
// then one draw driven by the caller's uniform in [0, 1).
//
// Definition shared by the fast path and the reference (so both pick the same token for the same
// uniform): p_i = exp((l_i - max) / T); rank tokens by (p desc, index asc); keep the first k (top_k),
// then the shortest prefix whose mass reaches top_p of the remaining mass, then those with
// p >= min_p * p_max. The kept set is a prefix of that ranking, described by its last element
// (pivot). The draw walks the kept tokens in index order: first i with cumsum > uniform * total.
// The fast path finds the pivot with partial sorts or a threshold scan instead of a full sort.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <vector>

#include "core/thread_pool.h"
#include "model/op_checks.h"
#include "ops.h"

namespace gptoss::cpu {

namespace {
int32_t argmax(const float* l, int64_t v) {
  int64_t best = 0;
  for (int64_t i = 1; i < v; ++i)
    if (l[i] > l[best]) best = i;
  return int32_t(best);
}

std::vector<float> probabilities(const float* l, int64_t v, float temperature) {
  const float m = l[argmax(l, v)];
  std::vector<float> p(static_cast<size_t>(v));
  for (int64_t i = 0; i < v; ++i) p[size_t(i)] = std::exp((l[i] - m) / temperature);
  return p;
}

struct Pivot {
  float value;
  int64_t index;
};
inline bool ranks_before(const std::vector<float>& p, int64_t a, int64_t b) {
  return p[size_t(a)] > p[size_t(b)] || (p[size_t(a)] == p[size_t(b)] && a < b);
}
inline bool kept(const std::vector<float>& p, int64_t i, Pivot pv) {
  return p[size_t(i)] > pv.value || (p[size_t(i)] == pv.value && i <= pv.index);
}

// Length of the kept prefix of `ranked` (the first `ranked.size()` tokens in rank order), given the
// mass of everything top-k left (`mass`). Returns 0 when the prefix does not decide top-p.
size_t kept_prefix(const std::vector<float>& p, const std::vector<int64_t>& ranked, double mass,
                   const SampleParams& params, bool complete) {
  size_t len = ranked.size();
  if (params.top_p < 1.f) {
    double cum = 0;
    size_t j = 0;
    for (; j < ranked.size(); ++j) {
      cum += p[size_t(ranked[j])];
      if (cum >= double(params.top_p) * mass) break;
    }
    if (j == ranked.size() && !complete) return 0;
    len = std::min(len, j + 1);
  }
  if (params.min_p > 0.f) {
    const float thr = params.min_p * p[size_t(ranked[0])];
    size_t j = 1;
    while (j < len && p[size_t(ranked[j])] >= thr) ++j;
    len = j;
  }
  return len;
}

int32_t draw(const std::vector<float>& p, Pivot pv, float uniform) {
  double total = 0;
  for (int64_t i = 0; i < int64_t(p.size()); ++i)
    if (kept(p, i, pv)) total += p[size_t(i)];
  const double target = double(uniform) * total;
  double cum = 0;
  int64_t last = pv.index;
  for (int64_t i = 0; i < int64_t(p.size()); ++i)
    if (kept(p, i, pv)) {
      cum += p[size_t(i)];
      last = i;
      if (cum > target) return int32_t(i);
    }
  return int32_t(last);
}

// The steps the fast path and the reference share before any ranking: the argument checks, a row
// that holds no distribution (backend.h's negative codes), greedy (temperature 0: argmax). Returns
// the id where one of those settles it; otherwise fills `p` with the probabilities at the temperature.
std::optional<int32_t> settled_before_ranking(const Tensor& logits, const SampleParams& params, float uniform,
                                              std::vector<float>& p) {
  checks::sample(logits, params, uniform, kCpuDevice);
  const int64_t v = logits.dim(-1);
  const float* l = logits.ptr<float>();
  if (const int32_t bad = checks::logit_row_code(l, v)) return bad;  // backend.h: no distribution
  if (params.temperature == 0.f) return argmax(l, v);
  p = probabilities(l, v, params.temperature);
  return std::nullopt;
}

double mass_of(const std::vector<float>& p, const std::vector<int64_t>* top_k_set) {
  double m = 0;
  if (top_k_set)
    for (int64_t i : *top_k_set) m += p[size_t(i)];
  else
    for (float x : p) m += x;
  return m;
}
}  // namespace

int32_t sample(const Tensor& logits, const SampleParams& params, float uniform) {
  std::vector<float> p;
  if (const std::optional<int32_t> id = settled_before_ranking(logits, params, uniform, p)) return *id;
  const int64_t v = logits.dim(-1);
  const auto cmp = [&](int64_t a, int64_t b) { return ranks_before(p, a, b); };
  const bool use_k = params.top_k > 0 && params.top_k < v;
  if (!use_k && params.top_p >= 1.f) {
    // min-p only (or nothing): a threshold scan, no sort.
    const float thr = params.min_p * 1.0f;  // p_max = exp(0) = 1
    Pivot pv{2.f, -1};
    for (int64_t i = 0; i < v; ++i)
      if (p[size_t(i)] >= thr && (p[size_t(i)] < pv.value || (p[size_t(i)] == pv.value && i > pv.index)))
        pv = {p[size_t(i)], i};
    return draw(p, pv, uniform);
  }
  std::vector<int64_t> order(static_cast<size_t>(v));
  std::iota(order.begin(), order.end(), 0);
  if (use_k) {
    std::partial_sort(order.begin(), order.begin() + params.top_k, order.end(), cmp);
    order.resize(size_t(params.top_k));
    const double mass = mass_of(p, &order);
    const size_t len = kept_prefix(p, order, mass, params, true);
    return draw(p, {p[size_t(order[len - 1])], order[len - 1]}, uniform);
  }
  // top-p without top-k: try the best 1024 first; sort everything only if they hold too little mass.
  const double mass = mass_of(p, nullptr);
  const int64_t m = std::min<int64_t>(v, 1024);
  std::partial_sort(order.begin(), order.begin() + m, order.end(), cmp);
  std::vector<int64_t> head(order.begin(), order.begin() + m);
  size_t len = kept_prefix(p, head, mass, params, m == v);
  if (len == 0) {
    std::sort(order.begin(), order.end(), cmp);
    len = kept_prefix(p, order, mass, params, true);
    return draw(p, {p[size_t(order[len - 1])], order[len - 1]}, uniform);
  }
  return draw(p, {p[size_t(head[len - 1])], head[len - 1]}, uniform);
}

namespace ref {
int32_t sample(const Tensor& logits, const SampleParams& params, float uniform) {
  std::vector<float> p;
  if (const std::optional<int32_t> id = settled_before_ranking(logits, params, uniform, p)) return *id;
  const int64_t v = logits.dim(-1);
  std::vector<int64_t> order(static_cast<size_t>(v));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ranks_before(p, a, b); });
  if (params.top_k > 0 && params.top_k < v) order.resize(size_t(params.top_k));
  const double mass = mass_of(p, params.top_k > 0 && params.top_k < v ? &order : nullptr);
  const size_t len = kept_prefix(p, order, mass, params, true);
  return draw(p, {p[size_t(order[len - 1])], order[len - 1]}, uniform);
}
}  // namespace ref

}  // namespace gptoss::cpu
