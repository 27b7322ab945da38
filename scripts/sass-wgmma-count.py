#!/usr/bin/env python3
"""Counts, per kernel of an sm_90a cubin, its HGMMA instructions and its WARPGROUP.ARRIVE / WARPGROUP.DEPBAR ones,
without a disassembler (this machine has no cuobjdump / nvdisasm):
  nvcc ... -x cu -cubin native/cuda/gemm_wgmma.cu -o /tmp/gw.cubin   (the flags of `ninja -t commands` for its .o)
  python3 scripts/sass-wgmma-count.py /tmp/gw.cubin [name-regex]
A pipelined wgmma K loop has 3 of the ARRIVE / DEPBAR class however many HGMMA it issues (an arrive before the
step's MMAs, the wait that leaves a group in flight, the final wait). A serialized one has an ARRIVE and a DEPBAR
per HGMMA, as ptxas's C7515 advisory warns. The encodings (opcode bits 0-11 of an instruction's first 64-bit word)
were read off ncu's SASS listing of a kernel lined up with its cubin (bench/RESULTS.md, 22nd session):
0x9f0 HGMMA.64x128x16.F32.BF16, 0x9c5 WARPGROUP.ARRIVE / WARPGROUP.DEPBAR."""
import re
import struct
import sys

HGMMA, WARPGROUP = 0x9F0, 0x9C5


def text_sections(path):
    d = open(path, "rb").read()
    if d[:4] != b"\x7fELF":
        sys.exit(f"sass-wgmma-count: {path}: not an ELF cubin")
    shoff = struct.unpack_from("<Q", d, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    hdr = lambda i: struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize)
    names = hdr(shstrndx)[4]
    for i in range(shnum):
        h = hdr(i)
        name = d[names + h[0] : d.index(b"\0", names + h[0])].decode()
        if name.startswith(".text."):
            yield name[len(".text.") :], d[h[4] : h[4] + h[5]]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pattern = re.compile(sys.argv[2] if len(sys.argv) > 2 else "")
    serialized = 0
    for name, code in text_sections(sys.argv[1]):
        if not pattern.search(name):
            continue
        ops = [struct.unpack_from("<Q", code, i)[0] & 0xFFF for i in range(0, len(code) - 15, 16)]
        n_mma, n_wg = ops.count(HGMMA), ops.count(WARPGROUP)
        if not n_mma:
            continue
        flag = "  serialized?" if n_wg > 3 and n_wg >= 2 * n_mma else ""
        serialized += bool(flag)
        short = re.sub(r".*_cu_[0-9a-f]+", "", name)  # the kernel and its template arguments
        print(f"{n_mma:3d} HGMMA {n_wg:3d} ARRIVE/DEPBAR  {short[:110]}{flag}")
    return 1 if serialized else 0


if __name__ == "__main__":
    sys.exit(main())
