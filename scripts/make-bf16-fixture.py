#!/usr/bin/env python3
"""tiny-a as a fine-tuned checkpoint: written by transformers itself, with its float32 logits.

A TRL fine-tune of gpt-oss loads the model with Mxfp4Config(dequantize=True) and saves it in bf16, so
its experts arrive as `mlp.experts.gate_up_proj` [E, H, 2I] / `down_proj` [E, I, H] in bf16. This
script does the same to test/fixtures/tiny-a (MXFP4), optionally moving the experts off the MXFP4 grid
as training would (--perturb: seeded noise of that many times each weight's own block scale), saves
with save_pretrained, loads the saved folder back in float32 (eager attention, CPU, as tiny-a's
reference) and writes its logits over tiny-a's prompt and a greedy continuation.

Needs torch and transformers (the GPU host has them; the dev box does not). Run from the repo root:
    python3 scripts/make-bf16-fixture.py --out test/fixtures/tiny-a-bf16 --perturb 0.05
Output folder: config.json, model.safetensors (bf16; what save_pretrained wrote), tokens.json,
logits.f32 ([48, 1024] float32 little-endian), greedy.json (20 ids), meta.json (versions, tensors).
test/bf16-experts.test.ts checks loadModel on it against these logits when the folder exists.
"""
import argparse
import json
import os

import numpy as np
import torch
import transformers
from safetensors import safe_open
from transformers import AutoModelForCausalLM, Mxfp4Config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="test/fixtures/tiny-a")
    ap.add_argument("--out", default="test/fixtures/tiny-a-bf16")
    ap.add_argument("--perturb", type=float, default=0.05,
                    help="noise (uniform, +-this many block scales) added to the dequantized experts; 0: none")
    ap.add_argument("--seed", type=int, default=20251204)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(
        args.src, quantization_config=Mxfp4Config(dequantize=True), dtype=torch.bfloat16,
        attn_implementation="eager", device_map="cpu")
    if args.perturb > 0:
        # Each expert weight moves by up to perturb x its MXFP4 block scale (2^(s-127)); the block
        # runs along the input dimension (dim 1 of [E, in, out]) in groups of 32.
        with torch.no_grad():
            for layer in model.model.layers:
                for name in ("gate_up_proj", "down_proj"):
                    w = getattr(layer.mlp.experts, name)
                    e, i, o = w.shape
                    blocks = w.float().reshape(e, i // 32, 32, o)
                    amax = blocks.abs().amax(dim=2, keepdim=True).clamp_min(1e-30)
                    scale = torch.exp2(torch.floor(torch.log2(amax)) - 2)
                    noise = (torch.rand(blocks.shape) * 2 - 1) * args.perturb * scale
                    w.copy_((blocks + noise).reshape(e, i, o).to(w.dtype))
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)

    tokens = json.load(open(os.path.join(args.src, "tokens.json")))
    greedy_n = len(json.load(open(os.path.join(args.src, "greedy.json"))))
    ref = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32, attn_implementation="eager",
                                               device_map="cpu").float().eval()
    with torch.no_grad():
        logits = ref(torch.tensor([tokens])).logits[0].float().numpy()
        gen = ref.generate(torch.tensor([tokens]), max_new_tokens=greedy_n, do_sample=False, use_cache=True,
                           eos_token_id=None, pad_token_id=0)
    logits.astype("<f4").tofile(os.path.join(args.out, "logits.f32"))
    json.dump(tokens, open(os.path.join(args.out, "tokens.json"), "w"))
    json.dump(gen[0, len(tokens):].tolist(), open(os.path.join(args.out, "greedy.json"), "w"))

    files = sorted(f for f in os.listdir(args.out) if f.endswith(".safetensors"))
    tensors = {}
    for f in files:
        with safe_open(os.path.join(args.out, f), "pt") as st:
            for k in st.keys():
                t = st.get_slice(k)
                tensors[k] = {"file": f, "dtype": str(t.get_dtype()), "shape": list(t.get_shape())}
    meta = {
        "source": args.src, "perturb": args.perturb, "seed": args.seed,
        "transformers": transformers.__version__, "torch": torch.__version__,
        "how": "from_pretrained(src, quantization_config=Mxfp4Config(dequantize=True), dtype=bfloat16), "
               "experts perturbed, save_pretrained; logits from from_pretrained(out, dtype=float32, eager, cpu)",
        "max_abs_logit": float(np.abs(logits).max()), "logit_std": float(logits.std()),
        "tensors": tensors,
    }
    json.dump(meta, open(os.path.join(args.out, "meta.json"), "w"), indent=1)
    print(f"{args.out}: {len(tensors)} tensors in {files}, logits {logits.shape}, greedy {gen[0, len(tokens):].tolist()}")


if __name__ == "__main__":
    main()
