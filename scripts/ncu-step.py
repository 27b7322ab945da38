#!/usr/bin/env python3
"""Per-kernel durations of the last decode step in an ncu CSV written by scripts/gpu-profile.sh.

ncu --csv --page raw --metrics gpu__time_duration.sum (every node of the captured graph on its own);
a decode step is the span between two greedy-sampling kernels. Prints one line per kernel (us, grid,
block, name) and the sum.   usage: python3 scripts/ncu-step.py ncu-decode-ctx512.csv [...]
With --by-name: every kernel of the whole run summed by name, largest first (a prefill profile).
"""
import csv
import io
import sys


def rows(path):
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
    table = list(csv.reader(io.StringIO("\n".join(l for l in lines[start:] if l.startswith('"')))))
    hdr, units = table[0], table[1]
    name, dur = hdr.index("Kernel Name"), hdr.index("gpu__time_duration.sum")
    grid, block = hdr.index("Grid Size"), hdr.index("Block Size")
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}[units[dur]]
    return [(r[name], float(r[dur].replace(",", "")) * scale, r[grid], r[block]) for r in table[2:]]


by_name = "--by-name" in sys.argv
for path in [a for a in sys.argv[1:] if a != "--by-name"]:
    data = rows(path)
    if by_name:
        total = {}
        for k, us, _, _ in data:
            n = k.split("(")[0][:90]
            c, t = total.get(n, (0, 0.0))
            total[n] = (c + 1, t + us)
        print(f"{path}: {len(data)} kernels, by name")
        for n, (c, t) in sorted(total.items(), key=lambda kv: -kv[1][1]):
            print(f"{t:11.1f} us  {c:5d} calls  {n}")
        print(f"{sum(t for _, t in total.values()):11.1f} us  total")
        continue
    marks = [i for i, (k, *_) in enumerate(data) if "argmax" in k or "sample" in k]
    if len(marks) < 2:
        sys.exit(f"{path}: fewer than two sampling kernels, no complete step")
    step = data[marks[-2] + 1 : marks[-1] + 1]
    print(f"{path}: {len(step)} kernels in the last step")
    for k, us, g, b in step:
        print(f"{us:9.2f} us  {g:>14} {b:>12}  {k.split('(')[0][:90]}")
    print(f"{sum(us for _, us, _, _ in step):9.2f} us  total")
