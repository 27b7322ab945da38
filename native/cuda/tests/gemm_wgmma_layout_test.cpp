// Host test of the wgmma GEMM tile's layout (native/cuda/gemm_wgmma_layout.h, used by gemm_wgmma.cu;
// issue 12 item 4): plain C++, no GPU, so CI runs it (test/gemm-wgmma-layout.test.ts). What a GPU
// run would otherwise be the first to exercise, against the PTX ISA's description of wgmma:
//  1. the shared-memory plan: every operand tile 1024-byte aligned (the 128-byte swizzle atoms),
//     regions disjoint and inside the requested bytes, within an H100/H200 block (227 KB) at the
//     largest K, shared addresses within the descriptor's 18 bits;
//  2. the producers: every element of every stage (A hi, A lo, bf16 W; MXFP4 packed units and the
//     decoded W) written exactly once per step;
//  3. what wgmma reads: each descriptor the kernel builds, decoded the way the PTX ISA defines it
//     (start address, stride byte offset between 8-row atoms, 128-byte swizzle of address bits 4-6 by
//     bits 7-9), lands for every (row, k) of the 64 x 16 A slice and the 128 x 16 B slice exactly on
//     the element the producers put there for that row and K index;
//  4. the accumulator map (acc_row, acc_col) equals the ISA's register fragment layout, and covers
//     the 64 WG x 128 block exactly once;
//  5. the ring and decoded-buffer reuse: the slot a step writes is never one a wgmma in flight reads;
//  6. a whole block emulated (copies with their zero fill, MXFP4 decode, the descriptor reads, the
//     epilogues with the SwiGLU quad transpose) on partial row/column/K tiles and gathered rows,
//     against a plain double GEMM of (hi + lo) x W.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/tests/check.h"
#include "cuda/gemm_wgmma_layout.h"

using namespace gptoss::cuda;
using namespace gptoss::test;
namespace wl = gptoss::cuda::wgmma;

namespace {
// ---- the PTX ISA's view of a K-major, 128-byte swizzled operand (independent of the kernel's code) ----
struct Desc {
  uint32_t start, lbo, sbo, base_offset, swizzle;
};
Desc decode_desc(uint64_t d) {
  return Desc{uint32_t(d & 0x3FFF) << 4, uint32_t((d >> 16) & 0x3FFF) << 4, uint32_t((d >> 32) & 0x3FFF) << 4,
              uint32_t((d >> 49) & 7), uint32_t(d >> 62)};
}
// The shared byte address wgmma reads for element (row, k) (k < 16: one instruction's K) of the operand.
uint32_t wgmma_element_addr(const Desc& d, int row, int k) {
  const uint32_t linear = d.start + uint32_t(row / 8) * d.sbo + uint32_t(row % 8) * 128 + uint32_t(k) * 2;
  return linear ^ (((linear >> 7) & 7) << 4);  // 128B swizzle: bits 4-6 ^= bits 7-9
}

// ---- bf16 helpers ----
uint16_t bf16_rn(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}
float bf16_f(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
float e2m1(int code) {
  static const float t[8] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};
  return code & 8 ? -t[code & 7] : t[code & 7];
}

// A region of a shared-memory plan: offset from the aligned base, bytes, alignment.
struct Region {
  int off, bytes, align;
};
// Every region aligned, inside [0, avail) and disjoint from the others.
bool plan_ok(const std::vector<Region>& rs, int avail) {
  bool ok = true;
  for (size_t i = 0; i < rs.size(); ++i) {
    ok &= rs[i].off % rs[i].align == 0 && rs[i].off >= 0 && rs[i].off + rs[i].bytes <= avail;
    for (size_t j = 0; j < i; ++j) ok &= rs[i].off + rs[i].bytes <= rs[j].off || rs[j].off + rs[j].bytes <= rs[i].off;
  }
  return ok;
}

// 1. the shared-memory plan
void check_plan() {
  for (int mx = 0; mx < 2; ++mx)
    for (int bm : {64, 128})
      for (int kb : {1, 90, 180, wl::kMaxKBlocks}) {
        if (!mx && kb != 1) continue;
        const std::string tag = std::string(mx ? "mxfp4" : "bf16") + " bm" + std::to_string(bm) + " kb" + std::to_string(kb);
        std::vector<Region> rs;
        for (int s = 0; s < wl::kStages; ++s) {
          rs.push_back({wl::a_offset(mx, bm, s, 0), wl::a_bytes(bm), 1024});
          rs.push_back({wl::a_offset(mx, bm, s, 1), wl::a_bytes(bm), 1024});
          rs.push_back({wl::w_offset(mx, bm, s), wl::w_bytes(mx), mx ? 16 : 1024});
        }
        if (mx) {
          for (int b = 0; b < wl::kDecBufs; ++b) rs.push_back({wl::dec_offset(bm, b), wl::kDecBytes, 1024});
          rs.push_back({wl::scales_offset(bm), wl::kBN * kb, 4});
        }
        const int avail = wl::smem_bytes(mx, bm, kb) - wl::kAtomBytes;  // after aligning the base
        check(plan_ok(rs, avail), "plan: aligned, disjoint, inside the request: " + tag);
        // 232448 bytes: the opt-in shared memory of a block on H100/H200 (cudaDevAttrMaxSharedMemoryPerBlockOptin)
        check(wl::smem_bytes(mx, bm, kb) + wl::static_smem_bytes(bm) <= 232448, "plan: fits an sm_90 block: " + tag);
        check(wl::smem_bytes(mx, bm, kb) + 1024 < (1 << 18), "plan: shared addresses within the descriptor's 18 bits: " + tag);
      }
}

// 1b. the warp-specialized tile's plan (gemm_wgmma_ws_kernel): S whole slots (A hi, A lo, decoded W, packed W), the
// 2 S mbarriers, the scales: aligned, disjoint, inside the request; the producer warpgroup's copies cover every
// 16-byte chunk of both A halves once and its MXFP4 units every unit of the stage once.
void check_ws_plan() {
  for (int bm : {64, 128})
    for (int kb : {1, 90, 139}) {
      const std::string tag = "ws bm" + std::to_string(bm) + " kb" + std::to_string(kb);
      std::vector<Region> rs;
      for (int s = 0; s < wl::kWsStages; ++s) {
        rs.push_back({wl::ws_a_offset(bm, s, 0), wl::a_bytes(bm), 1024});
        rs.push_back({wl::ws_a_offset(bm, s, 1), wl::a_bytes(bm), 1024});
        rs.push_back({wl::ws_dec_offset(bm, s), wl::kDecBytes, 1024});
        rs.push_back({wl::ws_packed_offset(bm, s), wl::kBN * 32, 16});
      }
      for (int i = 0; i < 2 * wl::kWsStages; ++i) rs.push_back({wl::ws_bar_offset(bm, i), 8, 8});
      rs.push_back({wl::ws_scales_offset(bm), wl::kBN * kb, 4});
      check(plan_ok(rs, wl::ws_smem_bytes(bm, kb) - wl::kAtomBytes), "plan: aligned, disjoint, inside the request: " + tag);
      check(wl::ws_smem_bytes(bm, kb) + wl::static_smem_bytes(bm) <= 232448, "plan: fits an sm_90 block: " + tag);
      check(wl::ws_smem_bytes(bm, kb) + 1024 < (1 << 18), "plan: shared addresses within the descriptor's 18 bits: " + tag);
    }
  for (int bm : {64, 128}) {
    std::vector<int> a(size_t(bm) * 8, 0), units(size_t(wl::kBN) * 2, 0);
    for (int pt = 0; pt < wl::kWsProducers; ++pt) {
      for (int i = 0; i < wl::ws_a_copies(bm); ++i) {
        const int row = wl::ws_a_copy_row(pt, i);
        if (row < bm) ++a[size_t(row) * 8 + wl::copy_chunk(pt)];
        else a[0] = 99;
      }
      for (int i = 0; i < wl::kWsMxUnits; ++i) ++units[size_t(wl::ws_mx_unit(pt, i))];
    }
    bool once = true;
    for (int c : a) once &= c == 1;
    for (int c : units) once &= c == 1;
    check(once, "ws producers: every A chunk and MXFP4 unit of a stage copied once, bm " + std::to_string(bm));
  }
  check(wl::ws_threads(128) == 512 && wl::ws_threads(64) == 384, "ws: two producer warpgroups beside the consumers");
}

// 7. the warp-specialized tile's protocol (gemm_wgmma_ws_kernel): its producer and consumer loops, step by step as
// the kernel writes them, under random interleavings, with mbarriers as the PTX ISA defines them (a phase completes
// at its count-th arrival; try_wait.parity(p) passes once the current phase's parity differs from p, so parity 1
// passes on a fresh barrier) and cp.async groups that land in any order (wait_group n: all but the newest n have
// landed). Checked: no deadlock; every wgmma reads its own stage, landed and decoded by every producer thread; no
// copy or decode writes a slot while a wgmma that reads it is in flight. Bugs the model must catch (so the check
// can fail): releasing a slot before its wgmma completed, and the first version's step order (issue, then complete)
// at L = S - 1, which deadlocks.
struct WsModel {
  int S, L, nk, P, CW;
  bool release_early = false, issue_first = false;
  struct Bar {
    int count = 0, pending = 0, phase = 0;
    void arrive() {
      if (--pending == 0) ++phase, pending = count;
    }
    bool passed(int parity) const { return (phase & 1) != parity; }
  };
  std::vector<Bar> full, empty;
  std::vector<std::vector<int>> slot_a, slot_dec;  // [slot][producer]: the stage copied / decoded there (-1 none)
  std::vector<std::vector<bool>> landed;          // [slot][producer]: that copy has landed
  std::vector<int> reading;                       // [slot]: wgmma in flight on it
  struct Group {
    int slot, stage;  // stage -1: an empty group
    bool landed;
  };
  struct Producer {
    int kt = 0, sub = 0, slot = 0, done_slot = 0, phase = 0;
    std::vector<Group> groups;  // committed, oldest first
    bool finished = false;
  };
  struct Consumer {
    int kt = 0, slot = 0, prev = -1, phase = 0, sub = 0;
    bool finished = false;
  };
  std::vector<Producer> prod;
  std::vector<Consumer> cons;
  std::string error;

  WsModel(int s, int l, int n, int p, int cw) : S(s), L(l), nk(n), P(p), CW(cw) {}
  void fail(const std::string& e) {
    if (error.empty()) error = e;
  }
  void init() {
    full.assign(size_t(S), Bar{P, P, 0});
    empty.assign(size_t(S), Bar{CW, CW, 0});
    slot_a.assign(size_t(S), std::vector<int>(size_t(P), -1));
    slot_dec = slot_a;
    landed.assign(size_t(S), std::vector<bool>(size_t(P), false));
    reading.assign(size_t(S), 0);
    prod.assign(size_t(P), Producer{});
    cons.assign(size_t(CW), Consumer{});
  }
  // Producer t's next action; false when it waits.
  bool step_producer(int t) {
    Producer& q = prod[size_t(t)];
    if (q.finished) return false;
    if (q.kt >= nk + L) {
      q.finished = true;
      return true;
    }
    // the kernel's order: sub 0 completes stage kt - L, sub 1 issues stage kt, sub 2 commits; the first version
    // issued before completing (sub order 1, 2, 0)
    const int order[3] = {issue_first ? 1 : 0, issue_first ? 2 : 1, issue_first ? 0 : 2};
    const int what = order[q.sub];
    if (what == 0) {
      if (q.kt >= L) {
        // cp_async_wait<L - 1> (kernel) counts groups committed before this point; issue-first commits stage kt
        // first, so wait<L> there (both mean: stage kt - L has landed)
        const int newest = issue_first ? L : L - 1;
        for (size_t i = 0; i + size_t(newest) < q.groups.size(); ++i)
          if (!q.groups[i].landed) return false;
        const int st = q.kt - L, sl = q.done_slot;
        if (slot_a[size_t(sl)][size_t(t)] != st || !landed[size_t(sl)][size_t(t)])
          fail("decode of stage " + std::to_string(st) + " finds slot " + std::to_string(sl) + " not holding it");
        if (reading[size_t(sl)]) fail("decode into slot " + std::to_string(sl) + " while a wgmma reads it");
        slot_dec[size_t(sl)][size_t(t)] = st;
        full[size_t(sl)].arrive();
        q.done_slot = (q.done_slot + 1) % S;
      }
    } else if (what == 1) {
      if (q.kt < nk) {
        if (q.kt >= S && !empty[size_t(q.slot)].passed(q.phase ^ 1)) return false;
        if (reading[size_t(q.slot)]) fail("copy into slot " + std::to_string(q.slot) + " while a wgmma reads it");
        slot_a[size_t(q.slot)][size_t(t)] = q.kt;
        landed[size_t(q.slot)][size_t(t)] = false;
      }
    } else {
      q.groups.push_back(Group{q.slot, q.kt < nk ? q.kt : -1, q.kt >= nk});
      if (q.kt < nk && ++q.slot == S) q.slot = 0, q.phase ^= 1;
    }
    if (++q.sub == 3) q.sub = 0, ++q.kt;
    return true;
  }
  void check_read(int sl, int st) {
    for (int t = 0; t < P; ++t)
      if (slot_a[size_t(sl)][size_t(t)] != st || !landed[size_t(sl)][size_t(t)] || slot_dec[size_t(sl)][size_t(t)] != st)
        fail("wgmma of stage " + std::to_string(st) + " reads slot " + std::to_string(sl) + " without it in place");
  }
  bool step_consumer(int w) {
    Consumer& c = cons[size_t(w)];
    if (c.finished) return false;
    if (c.kt == nk) {  // wait_group 0: the last stage's wgmma complete
      if (c.prev >= 0) {
        check_read(c.prev, nk - 1);
        --reading[size_t(c.prev)];
      }
      c.finished = true;
      return true;
    }
    if (c.sub == 0) {  // wait for the slot, issue its wgmma
      if (!full[size_t(c.slot)].passed(c.phase)) return false;
      check_read(c.slot, c.kt);
      ++reading[size_t(c.slot)];
      if (release_early) {  // the bug: the slot released at issue
        empty[size_t(c.slot)].arrive();
      }
      c.sub = 1;
      return true;
    }
    // wait_group 1: step kt - 1's wgmma complete; release its slot
    if (c.prev >= 0) {
      check_read(c.prev, c.kt - 1);
      --reading[size_t(c.prev)];
      if (!release_early) empty[size_t(c.prev)].arrive();
    }
    c.prev = c.slot;
    if (++c.slot == S) c.slot = 0, c.phase ^= 1;
    c.sub = 0;
    ++c.kt;
    return true;
  }
  // Runs one random interleaving: "" when it finished cleanly, else what went wrong.
  std::string run(uint32_t seed) {
    init();
    std::mt19937 rng(seed);
    for (int tick = 0; tick < 1000000; ++tick) {
      std::vector<int> moves;  // actor a: producer a (< P), consumer a - P (< P + CW), landing of group a - P - CW
      for (int a = 0; a < P + CW; ++a) moves.push_back(a);
      std::vector<std::pair<int, size_t>> lands;
      for (int t = 0; t < P; ++t)
        for (size_t i = 0; i < prod[size_t(t)].groups.size(); ++i)
          if (!prod[size_t(t)].groups[i].landed) lands.push_back({t, i});
      std::shuffle(moves.begin(), moves.end(), rng);
      // group i of producer t lands: its stage's copy is in its slot, unless a later stage has taken the slot
      auto land = [&](std::pair<int, size_t> which) {
        const auto [t, i] = which;
        Group& gr = prod[size_t(t)].groups[i];
        gr.landed = true;
        if (gr.stage >= 0 && slot_a[size_t(gr.slot)][size_t(t)] == gr.stage) landed[size_t(gr.slot)][size_t(t)] = true;
        return true;
      };
      bool moved = !lands.empty() && rng() % 3 == 0 && land(lands[rng() % lands.size()]);
      for (int a : moves) {
        if (moved) break;
        moved = a < P ? step_producer(a) : step_consumer(a - P);
      }
      if (!moved && !lands.empty()) moved = land(lands[0]);  // only landings can move things on
      if (!error.empty()) return error;
      bool all = true;
      for (const Producer& q : prod) all &= q.finished;
      for (const Consumer& c : cons) all &= c.finished;
      if (all) return "";
      if (!moved) return "deadlock";
    }
    return "did not finish";
  }
};

void check_ws_protocol() {
  // the kernel's constants, then other rings and lookaheads the static_assert admits (L <= S - 1), K steps from 1
  std::vector<std::array<int, 2>> rings = {{wl::kWsStages, wl::kLookahead}, {4, 1}, {4, 3}, {3, 2}, {2, 1}, {5, 2}};
  bool ok = true;
  std::string first;
  for (const auto& [S, L] : rings)
    for (int nk : {1, 2, 3, 5, 9, 45})
      for (uint32_t seed = 1; seed <= 40; ++seed) {
        WsModel m(S, L, nk, 3, 2);
        const std::string e = m.run(seed * 7919u + uint32_t(nk));
        if (!e.empty() && ok) first = "S " + std::to_string(S) + " L " + std::to_string(L) + " nk " + std::to_string(nk) + ": " + e;
        ok &= e.empty();
      }
  check(ok, "ws protocol: no deadlock, every wgmma reads its stage whole, no write under a read in flight" +
                (first.empty() ? std::string() : " (" + first + ")"));
  // the model catches the two bugs
  int caught = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    WsModel m(4, 2, 45, 3, 2);
    m.release_early = true;
    caught += !m.run(seed).empty();
  }
  check(caught > 0, "ws protocol model: a slot released at issue is caught (" + std::to_string(caught) + " of 40 runs)");
  WsModel old(4, 3, 45, 3, 2);
  old.issue_first = true;
  check(old.run(1) == "deadlock", "ws protocol model: the first version's step order deadlocks at L = S - 1");
  WsModel old_ok(4, 2, 45, 3, 2);
  old_ok.issue_first = true;
  check(old_ok.run(1).empty(), "ws protocol model: the first version's step order runs at L = S - 2");
}

// Tags of elements: which operand, row, K index (within the stage).
constexpr int kUnset = -1, kTwice = -3;
int tag(int op, int row, int k) { return (op << 20) | (row << 8) | k; }

// 2 + 3: one stage's producers into a tagged element map, then every wgmma of the step read through
// the descriptor model.
void check_stage_reads() {
  for (int mx = 0; mx < 2; ++mx)
    for (int bm : {64, 128}) {
      const std::string name = std::string(mx ? "mxfp4" : "bf16") + " bm" + std::to_string(bm);
      const int T = wl::threads(bm), kb = 8, slot = 1;
      std::vector<int> mem(size_t(wl::smem_bytes(mx, bm, kb)) / 2, kUnset);
      auto put = [&](uint32_t byte, int t) {
        int& m = mem[byte / 2];
        m = m == kUnset ? t : kTwice;
      };
      int units = 0;
      for (int tid = 0; tid < T; ++tid) {
        const int ch = wl::copy_chunk(tid);
        for (int part = 0; part < 2; ++part)
          for (int i = 0; i < wl::a_copies(bm); ++i) {
            const int row = wl::a_copy_row(bm, tid, i);
            for (int e = 0; e < 8; ++e)
              put(wl::a_offset(mx, bm, slot, part) + wl::sw128(row, ch) + 2 * e, tag(part, row, 8 * ch + e));
          }
        if (!mx) {
          for (int i = 0; i < wl::w_copies(bm); ++i) {
            const int row = wl::w_copy_row(bm, tid, i);
            for (int e = 0; e < 8; ++e) put(wl::w_offset(false, bm, slot) + wl::sw128(row, ch) + 2 * e, tag(2, row, 8 * ch + e));
          }
        } else {
          for (int i = 0; i < wl::mx_units(bm); ++i) {  // the decode of unit u: row u/2, block u&1, word q, value e
            const int u = wl::mx_unit(bm, tid, i), row = u >> 1, half = u & 1;
            ++units;
            for (int q = 0; q < 4; ++q)
              for (int e = 0; e < 8; ++e)
                put(wl::dec_offset(bm, slot & 1) + wl::sw128(row, 4 * half + q) + 2 * e, tag(2, row, 32 * half + 8 * q + e));
          }
        }
      }
      if (mx) check(units == wl::kBN * 2, "mxfp4 units: 128 rows x 2 blocks, each decoded by one thread: " + name);
      // every element of every operand tile written exactly once
      bool once = true;
      auto tile_once = [&](uint32_t off, int rows) {
        std::vector<int> seen(size_t(rows) * 64, 0);
        for (int i = 0; i < rows * 64; ++i) {
          const int t = mem[off / 2 + i];
          if (t < 0) { once = false; continue; }
          const int r = (t >> 8) & 0xFFF, k = t & 0xFF;
          if (r >= rows || k >= 64) { once = false; continue; }
          ++seen[size_t(r) * 64 + k];
        }
        for (int s : seen) once &= s == 1;
      };
      tile_once(wl::a_offset(mx, bm, slot, 0), bm);
      tile_once(wl::a_offset(mx, bm, slot, 1), bm);
      tile_once(mx ? wl::dec_offset(bm, slot & 1) : wl::w_offset(false, bm, slot), wl::kBN);
      check(once, "producers write every (row, k) of A hi, A lo, W exactly once: " + name);
      // the reads of step `slot`: warpgroup wg, slice k16, part
      bool reads = true;
      const uint32_t base = 0x400;  // any 1024-aligned shared address: the model only sees address bits
      for (int wg = 0; wg < bm / 64; ++wg)
        for (int k16 = 0; k16 < 4; ++k16) {
          for (int part = 0; part < 2; ++part) {
            const Desc d = decode_desc(wl::sw128_desc(wl::a_desc_addr(base + wl::a_offset(mx, bm, slot, part), wg, k16)));
            reads &= d.swizzle == 1 && d.base_offset == 0 && d.sbo == 1024;
            for (int m = 0; m < 64; ++m)
              for (int k = 0; k < 16; ++k)
                reads &= mem[(wgmma_element_addr(d, m, k) - base) / 2] == tag(part, 64 * wg + m, 16 * k16 + k);
          }
          const uint32_t w = base + (mx ? wl::dec_offset(bm, slot & 1) : wl::w_offset(false, bm, slot));
          const Desc d = decode_desc(wl::sw128_desc(wl::w_desc_addr(w, k16)));
          for (int n = 0; n < wl::kBN; ++n)
            for (int k = 0; k < 16; ++k) reads &= mem[(wgmma_element_addr(d, n, k) - base) / 2] == tag(2, n, 16 * k16 + k);
        }
      check(reads, "every wgmma operand element read through the descriptor is the producers' (row, k): " + name);
    }
}

// 4. the accumulator map against the ISA's fragment layout
void check_accumulators() {
  for (int bm : {64, 128}) {
    const int T = wl::threads(bm);
    std::vector<int> seen(size_t(bm) * wl::kBN, 0);
    bool isa = true;
    for (int tid = 0; tid < T; ++tid)
      for (int i = 0; i < wl::kAccRegs; ++i) {
        const int wg = tid / 128, w = (tid / 32) % 4, l = tid % 32, j = i / 4, r = i % 4;
        const int row = 64 * wg + 16 * w + l / 4 + (r >= 2 ? 8 : 0), col = 8 * j + 2 * (l % 4) + (r & 1);
        isa &= wl::acc_row(tid, i) == row && wl::acc_col(tid, i) == col;
        if (row < bm && col < wl::kBN) ++seen[size_t(row) * wl::kBN + col];
      }
    bool once = true;
    for (int s : seen) once &= s == 1;
    check(isa, "acc_row/acc_col == the ISA's m64nNk16 f32 fragment, bm " + std::to_string(bm));
    check(once, "accumulators cover the block exactly once, bm " + std::to_string(bm));
  }
}

// 5. ring and decoded-buffer reuse: at step kt the block writes slot (kt + L) % S and (MXFP4) decoded
// buffer kt & 1 while the wgmma of steps kt - 1 (waited one step late) and kt may read slots (kt - 1) % S,
// kt % S and buffers (kt - 1) & 1, kt & 1 (kt's own buffer is written before its barrier and wgmma).
void check_reuse() {
  bool ok = true;
  for (int kt = 0; kt < 64; ++kt) {
    const int w = (kt + wl::kLookahead) % wl::kStages;
    ok &= w != kt % wl::kStages && w != (kt + wl::kStages - 1) % wl::kStages;
    ok &= (kt & 1) != ((kt + 1) & 1);  // decoded: written kt, in flight kt - 1
    // the stages in flight (kt + 1 .. kt + L) and the two read never share a slot
    for (int a = kt - 1; a <= kt + wl::kLookahead; ++a)
      for (int b = a + 1; b <= kt + wl::kLookahead; ++b) ok &= (a + wl::kStages) % wl::kStages != (b + wl::kStages) % wl::kStages;
  }
  check(ok, "ring: no slot or decoded buffer is rewritten while a wgmma in flight may read it");
}

// 6. a whole block, emulated
struct Problem {
  int M, N, K, ldo;
  bool mx, swiglu;
  std::vector<int> a_rows;              // slot -> source row
  std::vector<uint16_t> a_hi, a_lo;     // [src rows, K]
  std::vector<uint16_t> w;              // bf16 [N, K]
  std::vector<uint8_t> blocks, scales;  // MXFP4 [N, K/32, 16], [N, K/32]
  std::vector<float> bias;              // [N]
};

double weight(const Problem& p, int n, int k) {
  if (!p.mx) return bf16_f(p.w[size_t(n) * p.K + k]);
  const int kb = p.K / 32, b = k / 32, j = k % 32;
  const uint8_t byte = p.blocks[(size_t(n) * kb + b) * 16 + j / 2];
  return double(e2m1(j & 1 ? byte >> 4 : byte & 15)) * std::ldexp(1.0, int(p.scales[size_t(n) * kb + b]) - 127);
}

float swiglu_ref(float g, float u, float limit, float alpha) {
  g = std::fmin(g, limit);
  u = std::fmax(std::fmin(u, limit), -limit);
  return (u + 1.f) * (g / (1.f + std::exp(-alpha * g)));
}

void emulate_block(const Problem& p, int bm, int tile, int bx, std::vector<double>& out, std::vector<int>& writes) {
  const bool mx = p.mx;
  const int T = wl::threads(bm), K = p.K, KB = K / 32, nk = (K + wl::kBK - 1) / wl::kBK, n0 = bx * wl::kBN, N = p.N;
  const int row0 = tile * bm, row_end = p.M;
  std::vector<uint8_t> smem(size_t(wl::smem_bytes(mx, bm, mx ? KB : 0)), 0xCD);  // poison
  std::vector<double> acc(size_t(bm) * wl::kBN, 0.0);
  auto src_row = [&](int i) { return row0 + i < row_end ? p.a_rows[size_t(row0 + i)] : -1; };
  auto st16 = [&](uint32_t off, uint16_t v) { std::memcpy(&smem[off], &v, 2); };
  auto ld16 = [&](uint32_t off) { uint16_t v; std::memcpy(&v, &smem[off], 2); return v; };
  auto issue = [&](int kt) {  // the kernel's issue(): cp.async with zero fill
    if (kt >= nk) return;
    const int slot = kt % wl::kStages, k0 = kt * wl::kBK;
    for (int tid = 0; tid < T; ++tid) {
      const int ch = wl::copy_chunk(tid);
      const bool k_ok = k0 + ch * 8 < K;
      for (int part = 0; part < 2; ++part)
        for (int i = 0; i < wl::a_copies(bm); ++i) {
          const int row = wl::a_copy_row(bm, tid, i), src = src_row(row);
          const bool ok = src >= 0 && k_ok;
          const std::vector<uint16_t>& a = part ? p.a_lo : p.a_hi;
          for (int e = 0; e < 8; ++e)
            st16(wl::a_offset(mx, bm, slot, part) + wl::sw128(row, ch) + 2 * e, ok ? a[size_t(src) * K + k0 + ch * 8 + e] : 0);
        }
      if (!mx) {
        for (int i = 0; i < wl::w_copies(bm); ++i) {
          const int row = wl::w_copy_row(bm, tid, i);
          const bool ok = n0 + row < N && k_ok;
          for (int e = 0; e < 8; ++e)
            st16(wl::w_offset(false, bm, slot) + wl::sw128(row, ch) + 2 * e, ok ? p.w[size_t(n0 + row) * K + k0 + ch * 8 + e] : 0);
        }
      } else {
        for (int i = 0; i < wl::mx_units(bm); ++i) {
          const int u = wl::mx_unit(bm, tid, i), row = u >> 1, blk = 2 * kt + (u & 1);
          const bool ok = n0 + row < N && blk < KB;
          for (int e = 0; e < 16; ++e)
            smem[wl::w_offset(true, bm, slot) + u * 16 + e] = ok ? p.blocks[(size_t(n0 + row) * KB + blk) * 16 + e] : 0;
        }
      }
    }
  };
  // scales of rows n0.. (rows past N: 127)
  if (mx)
    for (int i = 0; i < wl::kBN * KB; ++i)
      smem[wl::scales_offset(bm) + i] = i < std::min(wl::kBN, N - n0) * KB ? p.scales[size_t(n0) * KB + i] : 127;
  auto decode = [&](int kt) {  // the kernel's decode(), values through the reference E2M1 table
    for (int tid = 0; tid < T; ++tid)
      for (int i = 0; i < wl::mx_units(bm); ++i) {
        const int u = wl::mx_unit(bm, tid, i), row = u >> 1, half = u & 1, blk = 2 * kt + half;
        const int s = blk >= KB ? 127 : smem[wl::scales_offset(bm) + row * KB + blk];
        for (int q = 0; q < 4; ++q)
          for (int e = 0; e < 8; ++e) {
            const uint8_t byte = smem[wl::w_offset(true, bm, kt % wl::kStages) + u * 16 + 4 * q + e / 2];
            const float v = e2m1(e & 1 ? byte >> 4 : byte & 15) * std::ldexp(1.f, s - 127);
            st16(wl::dec_offset(bm, kt & 1) + wl::sw128(row, 4 * half + q) + 2 * e, bf16_rn(v));
          }
      }
  };
  for (int s = 0; s < wl::kLookahead; ++s) issue(s);
  for (int kt = 0; kt < nk; ++kt) {
    issue(kt + wl::kLookahead);
    if (mx) decode(kt);
    const int slot = kt % wl::kStages;
    const uint32_t wt = mx ? wl::dec_offset(bm, kt & 1) : wl::w_offset(false, bm, slot);
    for (int wg = 0; wg < bm / 64; ++wg)
      for (int k16 = 0; k16 < 4; ++k16) {
        const Desc db = decode_desc(wl::sw128_desc(wl::w_desc_addr(wt, k16)));
        for (int part = 0; part < 2; ++part) {
          const Desc da = decode_desc(wl::sw128_desc(wl::a_desc_addr(wl::a_offset(mx, bm, slot, part), wg, k16)));
          for (int m = 0; m < 64; ++m)
            for (int n = 0; n < wl::kBN; ++n) {
              double s = 0;
              for (int k = 0; k < 16; ++k)
                s += double(bf16_f(ld16(wgmma_element_addr(da, m, k)))) * double(bf16_f(ld16(wgmma_element_addr(db, n, k))));
              acc[size_t(64 * wg + m) * wl::kBN + n] += s;
            }
        }
      }
  }
  // epilogues, through the accumulator registers of each thread
  auto reg = [&](int tid, int i) { return acc[size_t(wl::acc_row(tid, i)) * wl::kBN + wl::acc_col(tid, i)]; };
  auto bias_at = [&](int col) { return double(p.bias[size_t(col)]); };
  for (int tid = 0; tid < T; ++tid) {
    if (p.swiglu) continue;
    for (int half = 0; half < 2; ++half) {
      const int r = row0 + wl::acc_row(tid, 2 * half);
      if (r >= row_end) continue;
      for (int nt = 0; nt < wl::kAccRegs / 4; ++nt) {
        const int i = 4 * nt + 2 * half, col = n0 + wl::acc_col(tid, i);
        if (col < N) out[size_t(r) * p.ldo + col] = reg(tid, i) + bias_at(col), ++writes[size_t(r) * p.ldo + col];
        if (col + 1 < N) out[size_t(r) * p.ldo + col + 1] = reg(tid, i + 1) + bias_at(col + 1), ++writes[size_t(r) * p.ldo + col + 1];
      }
    }
  }
  if (p.swiglu)
    for (int warp = 0; warp < T / 32; ++warp)
      for (int ng = 0; ng < 4; ++ng)
        for (int half = 0; half < 2; ++half) {
          float y[32][4], t[32][4];
          for (int lane = 0; lane < 32; ++lane)
            for (int j = 0; j < 4; ++j) {
              const int tid = 32 * warp + lane, i = 4 * (4 * ng + j) + 2 * half, col = n0 + wl::acc_col(tid, i);
              y[lane][j] = col < N ? swiglu_ref(float(reg(tid, i) + bias_at(col)), float(reg(tid, i + 1) + bias_at(col + 1)), 7.f, 1.702f) : 0.f;
            }
          for (int s = 0; s < 4; ++s)  // the kernel's quad transpose, shuffles emulated
            for (int lane = 0; lane < 32; ++lane) {
              const int tq = lane & 3, from = (tq - s) & 3;
              const int sender = (lane & ~3) | from, stq = sender & 3, to = (stq + s) & 3;  // what `sender` sends at step s
              t[lane][from] = y[sender][to];
            }
          for (int lane = 0; lane < 32; ++lane) {
            const int tid = 32 * warp + lane, tq = lane & 3;
            const int r = row0 + wl::acc_row(tid, 16 * ng + 2 * half);
            if (r >= row_end) continue;
            const int col0 = n0 + 32 * ng + 8 * tq;
            for (int j = 0; j < 4; ++j)
              if (col0 + 2 * j < N) {
                const size_t o = size_t(r) * p.ldo + col0 / 2 + j;
                out[o] = t[lane][j];
                ++writes[o];
              }
          }
        }
}

void check_block(bool mx, bool swiglu, int bm, int M, int N, int K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  Problem p;
  p.M = M, p.N = N, p.K = K, p.mx = mx, p.swiglu = swiglu, p.ldo = swiglu ? N / 2 : N;
  const int src_rows = M + 7;
  for (int i = 0; i < M; ++i) p.a_rows.push_back(int((i * 37 + 5) % src_rows));  // a gather, as the MoE permutation
  for (int i = 0; i < src_rows * K; ++i) {
    const float x = uni(rng) * 3.f;
    const uint16_t h = bf16_rn(x);
    p.a_hi.push_back(h);
    p.a_lo.push_back(bf16_rn(x - bf16_f(h)));
  }
  if (!mx) {
    for (int i = 0; i < N * K; ++i) p.w.push_back(bf16_rn(uni(rng) * 0.1f));
  } else {
    for (int i = 0; i < N * K / 2; ++i) p.blocks.push_back(uint8_t(rng()));
    for (int i = 0; i < N * K / 32; ++i) p.scales.push_back(uint8_t(118 + rng() % 6));
  }
  for (int i = 0; i < N; ++i) p.bias.push_back(uni(rng) * 0.5f);
  std::vector<double> out(size_t(M) * p.ldo, 0.0);
  std::vector<int> writes(out.size(), 0);
  const int tiles = (M + bm - 1) / bm, col_tiles = (N + wl::kBN - 1) / wl::kBN;
  for (int tile = 0; tile < tiles; ++tile)
    for (int bx = 0; bx < col_tiles; ++bx) emulate_block(p, bm, tile, bx, out, writes);
  double err = 0, ref = 0;
  bool once = true;
  for (int r = 0; r < M; ++r) {
    const int src = p.a_rows[size_t(r)];
    std::vector<double> full(static_cast<size_t>(N));
    for (int n = 0; n < N; ++n) {
      double s = p.bias[size_t(n)];
      for (int k = 0; k < K; ++k)
        s += (double(bf16_f(p.a_hi[size_t(src) * K + k])) + double(bf16_f(p.a_lo[size_t(src) * K + k]))) * weight(p, n, k);
      full[size_t(n)] = s;
    }
    for (int c = 0; c < p.ldo; ++c) {
      const double want = swiglu ? swiglu_ref(float(full[size_t(2 * c)]), float(full[size_t(2 * c + 1)]), 7.f, 1.702f) : full[size_t(c)];
      const double got = out[size_t(r) * p.ldo + c];
      err += (got - want) * (got - want);
      ref += want * want;
      once &= writes[size_t(r) * p.ldo + c] == 1;
    }
  }
  const double rel = std::sqrt(err / (ref > 0 ? ref : 1));
  const std::string name = std::string(mx ? "mxfp4" : "bf16") + (swiglu ? " swiglu" : " store") + " bm" + std::to_string(bm) +
                           " M" + std::to_string(M) + " N" + std::to_string(N) + " K" + std::to_string(K);
  check(once, "emulated block writes every output exactly once: " + name);
  // double sums in another order; SwiGLU rounds through float like the kernel's epilogue
  char buf[64];
  std::snprintf(buf, sizeof buf, " (rel L2 %.2e)", rel);
  check(rel < (swiglu ? 1e-6 : 1e-12), "emulated block == (hi + lo) x W + bias: " + name + buf);
}
}  // namespace

// Split-K (gemm_wgmma.cu kSplit): the blocks' K ranges cover [0, nk) in order, none empty where splits <= nk;
// the partial tiles' f32 pairs land on distinct words inside the reduction tile; the reducing blocks' rows
// (z, z + splits, ...) cover the tile once.
void check_split_k() {
  bool ranges = true, stores = true, rows = true;
  for (int nk = 1; nk <= 130; ++nk)
    for (int splits = 1; splits <= std::min(nk, wgmma::kMaxSplits); ++splits) {
      int prev = 0;
      for (int z = 0; z < splits; ++z) {
        const int b = wgmma::k_begin(nk, splits, z), e = wgmma::k_begin(nk, splits, z + 1);
        ranges &= b == prev && e > b;
        prev = e;
      }
      ranges &= prev == nk;
    }
  for (int bm : {64, 128}) {
    std::vector<int> hit(size_t(wgmma::red_bytes(bm) / 4), 0);
    for (int tid = 0; tid < wgmma::threads(bm); ++tid)
      for (int i = 0; i < wgmma::kAccRegs; i += 2) {
        const int o = wgmma::acc_row(tid, i) * wgmma::kRedStride + wgmma::acc_col(tid, i);
        stores &= o % 2 == 0 && o + 1 < int(hit.size()) && wgmma::acc_col(tid, i + 1) == wgmma::acc_col(tid, i) + 1 &&
                  wgmma::acc_row(tid, i + 1) == wgmma::acc_row(tid, i);
        if (o + 1 < int(hit.size())) ++hit[size_t(o)], ++hit[size_t(o + 1)];
      }
    int covered = 0;
    for (int r = 0; r < bm; ++r)
      for (int c = 0; c < wgmma::kBN; ++c) covered += hit[size_t(r * wgmma::kRedStride + c)] == 1;
    stores &= covered == bm * wgmma::kBN;
    const int warps = wgmma::threads(bm) / 32;
    for (int splits = 1; splits <= wgmma::kMaxSplits; ++splits) {
      std::vector<int> seen(size_t(bm), 0);
      for (int rank = 0; rank < splits; ++rank)
        for (int w = 0; w < warps; ++w)
          for (int rr = rank + w * splits; rr < bm; rr += warps * splits) ++seen[size_t(rr)];
      for (int v : seen) rows &= v == 1;
    }
  }
  check(ranges, "split-K: K ranges contiguous, in order, none empty");
  check(stores, "split-K: every accumulator pair stored once, 8-byte aligned, inside the tile");
  check(rows, "split-K: every row of the tile summed by exactly one block");
}

int main() {
  check_split_k();
  check_plan();
  check_ws_plan();
  check_ws_protocol();
  check_stage_reads();
  check_accumulators();
  check_reuse();
  // partial row tiles (M % bm), partial column tiles (N % 128), K not a multiple of the 64-wide stage
  check_block(false, false, 64, 70, 200, 200, 1);
  check_block(false, false, 128, 130, 136, 72, 2);
  check_block(false, true, 64, 9, 264, 136, 3);
  check_block(true, false, 128, 100, 72, 160, 4);   // 5 MX blocks: the last stage half empty
  check_block(true, true, 64, 65, 136, 96, 5);
  check_block(true, true, 128, 1, 128, 64, 6);      // a group of one row
  return checks_passed("wgmma layout");
}
