#!/usr/bin/env python3
"""Where a kernel's warps wait, from one Nsight Compute report exported as CSV (run on the GPU host):
  ncu -i R.ncu-rep --page raw --csv > raw.csv
  ncu -i R.ncu-rep --page source --csv --print-source sass > sass.csv
  python3 scripts/ncu-stalls.py raw.csv sass.csv
Prints the sampled stall reasons over the whole kernel (smsp__pcsamp_warps_issue_stalled_*, share of all samples),
then the SASS lines with the most samples and their top reasons. Either file may be missing or in a form this
does not know (an older ncu): it says so and prints what it can."""
import csv
import io
import sys


def read_csv(path, first=None):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError as e:
        print(f"ncu-stalls: {path}: {e}")
        return []
    # ncu prints notes ("==PROF==") before the table: start at the first line that looks like a CSV header
    lines = text.splitlines()
    # (the source page starts with a "Kernel Name" line before its header: `first` is the header's first column)
    start = next((i for i, l in enumerate(lines) if l.startswith(f'"{first}"' if first else '"')), None)
    if start is None:
        print(f"ncu-stalls: {path}: no CSV table ({lines[0][:100] if lines else 'empty'})")
        return []
    return list(csv.reader(io.StringIO("\n".join(lines[start:]))))


def num(s):
    try:
        return float(str(s).replace(",", ""))
    except ValueError:
        return None


def whole_kernel(rows):
    if len(rows) < 3:
        return
    head, data = rows[0], rows[2:]  # row 1 holds the units
    prefix = "smsp__pcsamp_warps_issue_stalled_"
    reasons = {}
    for i, name in enumerate(head):
        if name.startswith(prefix) and not name.endswith("_not_issued"):
            v = sum(num(r[i]) or 0 for r in data if i < len(r))
            reasons[name[len(prefix):]] = v
    total = sum(reasons.values())
    if not total:
        print("ncu-stalls: no smsp__pcsamp_warps_issue_stalled_* counters in the raw page")
        return
    print(f"stall samples over the kernel ({total:.0f}):")
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {k:28s} {100 * v / total:5.1f}%")


def per_line(rows):
    if len(rows) < 2:
        return
    head = rows[0]
    col = {h: i for i, h in enumerate(head)}
    samp = next((h for h in head if h.startswith("Warp Stall Sampling (All")), None)
    src = next((h for h in head if h in ("Source", "Sass", "SASS")), None)
    if samp is None or src is None:
        print(f"ncu-stalls: the source page has no sampling or source column ({', '.join(head[:12])})")
        return
    stall_cols = [h for h in head if h.startswith("stall_") and not h.endswith("(Not Issued)")]
    data = [r for r in rows[1:] if len(r) == len(head) and num(r[col[samp]])]
    total = sum(num(r[col[samp]]) for r in data)
    print(f"SASS lines by samples ({total:.0f} in all; top 20):")
    for r in sorted(data, key=lambda r: -num(r[col[samp]]))[:20]:
        top = sorted(((num(r[col[h]]) or 0, h) for h in stall_cols), reverse=True)[:2]
        why = ", ".join(f"{h.replace('stall_', '')} {v:.0f}" for v, h in top if v)
        print(f"  {100 * num(r[col[samp]]) / total:5.1f}%  {r[col[src]].strip()[:70]:70s}  {why}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        whole_kernel(read_csv(sys.argv[1]))
    if len(sys.argv) > 2:
        per_line(read_csv(sys.argv[2], "Address"))
