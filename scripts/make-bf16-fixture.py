#!/usr/bin/env python3
"""tiny-a as a fine-tuned checkpoint (bf16 experts, transformers' layout), with transformers' float32 logits.

A TRL fine-tune of gpt-oss loads the model with Mxfp4Config(dequantize=True) and saves it in bf16, so its
experts arrive as `mlp.experts.gate_up_proj` [E, H, 2I] / `down_proj` [E, I, H] in bf16 (the transpose of the
blocks' [E, out, in]; gate/up rows still interleaved), biases unchanged, no quantization_config.

This script writes that layout itself instead of through save_pretrained: transformers 5.17.0's
save_pretrained of an Mxfp4Config(dequantize=True) model wrote the experts under keys its own from_pretrained
then reported MISSING (and initialised at random), so a reference made that way is of random experts.
Steps:
 1. dequantize tiny-a's MXFP4 experts with numpy (E2M1 codes, low nibble = even value, scale 2^(s-127)),
    transpose to [E, in, out], optionally move them off the MXFP4 grid as training would (--perturb: seeded
    uniform noise of +-S times each value's own block scale), round to bf16 (torch, round-to-nearest-even)
    and write every tensor with safetensors' save_file (the other tensors copied as stored);
 2. check the dequantization against transformers' own: from_pretrained(src, Mxfp4Config(dequantize=True))
    must hold exactly the unperturbed expert values (any layout transformers uses internally is reported);
 3. load the written folder with from_pretrained(out, float32, eager, cpu, output_loading_info=True) and
    fail unless nothing is missing, unexpected or mismatched and every parameter equals the file's value;
 4. write its logits over tiny-a's prompt and a greedy continuation (model.generate, KV cache).

Needs torch, transformers and safetensors (the GPU host has them; the dev box does not). From the repo root:
    python3 scripts/make-bf16-fixture.py --out test/fixtures/tiny-a-bf16 --perturb 0.005
Output folder: config.json, model.safetensors (bf16 everywhere), tokens.json, logits.f32 ([48, 1024] float32
little-endian), greedy.json (20 ids), meta.json (versions, checks, tensors, sha256 of the weights).
test/bf16-experts.test.ts checks loadModel on it against these logits.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Mxfp4Config

# FP4 E2M1 code -> value; bit 3 is the sign (OCP MX spec; transformers integrations/mxfp4.py uses the same table).
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float64)


def dequantize(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """blocks uint8 [E, R, G, 16], scales uint8 [E, R, G] -> float64 [E, R, G*32] ([E, out, in])."""
    codes = np.stack([blocks & 15, blocks >> 4], axis=-1)  # byte k: value 2k low nibble, 2k+1 high
    codes = codes.reshape(*blocks.shape[:-1], 32)
    vals = E2M1[codes] * np.ldexp(1.0, scales.astype(np.int64) - 127)[..., None]
    return vals.reshape(blocks.shape[0], blocks.shape[1], -1)


def fine_tuned_tensors(src: str, perturb: float, seed: int):
    """Every tensor of tiny-a in the fine-tuned layout, plus the unperturbed float64 experts for step 2."""
    rng = np.random.default_rng(seed)
    out, exact = {}, {}
    with safe_open(os.path.join(src, "model.safetensors"), "pt") as st:
        keys = sorted(st.keys())
        for k in keys:
            if k.endswith("_scales"):
                continue
            if not k.endswith("_blocks"):
                out[k] = st.get_tensor(k)
                continue
            base = k[: -len("_blocks")]
            blocks = st.get_tensor(k).numpy()
            scales = st.get_tensor(base + "_scales").numpy()
            w = dequantize(blocks, scales)                       # [E, out, in]
            exact[base] = np.ascontiguousarray(w.transpose(0, 2, 1))  # [E, in, out], transformers' layout
            wt = exact[base].copy()
            if perturb > 0:
                e, n_in, n_out = wt.shape
                # the block scale of value (e, i, o) is scales[e, o, i // 32]
                scale = np.ldexp(1.0, scales.astype(np.int64) - 127).transpose(0, 2, 1)  # [E, G, out]
                scale = np.repeat(scale, 32, axis=1)                                     # [E, in, out]
                wt = wt + rng.uniform(-1.0, 1.0, size=wt.shape) * perturb * scale
            out[base] = torch.from_numpy(wt.astype(np.float32)).to(torch.bfloat16)
    return out, exact


def expert_layout(held: torch.Tensor, want: np.ndarray) -> str:
    """How transformers holds an expert tensor relative to [E, in, out] (gate/up interleaved): 'as stored',
    'transposed', 'transposed, gate/up de-interleaved', or 'different'."""
    h = held.detach().double().numpy()
    if h.shape == want.shape and np.array_equal(h, want):
        return "as stored"
    t = want.transpose(0, 2, 1)
    if h.shape == t.shape and np.array_equal(h, t):
        return "transposed"
    if h.shape == t.shape and t.shape[1] % 2 == 0:
        d = np.concatenate([t[:, 0::2, :], t[:, 1::2, :]], axis=1)
        if np.array_equal(h, d):
            return "transposed, gate/up de-interleaved"
    return "different"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="test/fixtures/tiny-a")
    ap.add_argument("--out", default="test/fixtures/tiny-a-bf16")
    ap.add_argument("--perturb", type=float, default=0.005,
                    help="noise (uniform, +-this many block scales) added to the dequantized experts; 0: none")
    ap.add_argument("--seed", type=int, default=20251204)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    checks = {}

    # 1. the fine-tuned layout, written with safetensors' own API
    tensors, exact = fine_tuned_tensors(args.src, args.perturb, args.seed)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})
    config = json.load(open(os.path.join(args.src, "config.json")))
    config.pop("quantization_config", None)
    config["torch_dtype"] = "bfloat16"
    json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=2)

    # 2. our dequantization == transformers' own (Mxfp4Config(dequantize=True)), every layer
    deq = AutoModelForCausalLM.from_pretrained(args.src, quantization_config=Mxfp4Config(dequantize=True),
                                               dtype=torch.float32, attn_implementation="eager", device_map="cpu")
    held = dict(deq.named_parameters())
    layouts = {}
    for base, want in exact.items():
        if base not in held:
            sys.exit(f"transformers' dequantized model has no parameter {base}; it has: "
                     + ", ".join(k for k in held if ".experts." in k)[:2000])
        layouts[base] = expert_layout(held[base], want)
    checks["dequantized_like_transformers"] = layouts
    if any(v == "different" for v in layouts.values()):
        sys.exit(f"numpy dequantization differs from transformers' Mxfp4Config(dequantize=True): {layouts}")
    del deq, held

    # 3. the written folder loads with nothing missing, and holds exactly the file's values
    ref, info = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32, attn_implementation="eager",
                                                     device_map="cpu", output_loading_info=True)
    ref = ref.float().eval()
    info = {k: sorted(str(x) for x in v) for k, v in info.items()}
    checks["loading_info"] = info
    params = dict(ref.named_parameters())
    if any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")):
        sys.exit(f"from_pretrained({args.out}) did not load the file as written: {info}\nthe model's experts: "
                 + ", ".join(f"{k} {list(v.shape)}" for k, v in params.items() if ".layers.0.mlp" in k))
    differ = []
    for k, t in tensors.items():
        want = t.double().numpy()
        if k not in params:
            differ.append(f"{k} (no such parameter)")
        elif k in exact:
            if expert_layout(params[k], want) == "different":
                differ.append(k)
        elif not np.array_equal(params[k].detach().double().numpy(), want):
            differ.append(k)
    missing_in_file = sorted(set(params) - set(tensors))
    checks["parameters_equal_file"] = not differ and not missing_in_file
    if differ or missing_in_file:
        sys.exit(f"after loading, parameters differ from the file: {differ}; not in the file: {missing_in_file}")

    # 4. reference outputs
    tokens = json.load(open(os.path.join(args.src, "tokens.json")))
    greedy_n = len(json.load(open(os.path.join(args.src, "greedy.json"))))
    with torch.no_grad():
        logits = ref(torch.tensor([tokens])).logits[0].float().numpy()
        gen = ref.generate(torch.tensor([tokens]), max_new_tokens=greedy_n, min_new_tokens=greedy_n,
                           do_sample=False, use_cache=True, eos_token_id=None, pad_token_id=0)
    greedy = gen[0, len(tokens):].tolist()
    logits.astype("<f4").tofile(os.path.join(args.out, "logits.f32"))
    json.dump(tokens, open(os.path.join(args.out, "tokens.json"), "w"))
    json.dump(greedy, open(os.path.join(args.out, "greedy.json"), "w"))
    # With no perturbation the bf16 file holds tiny-a's values exactly: its logits must be tiny-a's.
    src_logits = np.fromfile(os.path.join(args.src, "logits.f32"), dtype="<f4").reshape(logits.shape)
    rel = float(np.linalg.norm(logits - src_logits) / np.linalg.norm(src_logits))
    agree = float((logits.argmax(-1) == src_logits.argmax(-1)).mean())
    checks["vs_mxfp4_source_logits"] = {"rel_l2": rel, "argmax_agreement": agree}
    if args.perturb == 0 and rel > 1e-5:
        sys.exit(f"unperturbed bf16 experts give logits {rel:.3e} away from {args.src}/logits.f32")

    meta = {
        "source": args.src, "perturb": args.perturb, "seed": args.seed,
        "transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__,
        "how": "experts dequantized from tiny-a's MXFP4 with numpy, transposed to [E, in, out], perturbed, "
               "rounded to bf16, written with safetensors.torch.save_file; logits from "
               "from_pretrained(out, dtype=float32, eager, cpu); greedy from generate(do_sample=False, use_cache=True)",
        "checks": checks,
        "sha256_model_safetensors": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "max_abs_logit": float(np.abs(logits).max()), "logit_std": float(logits.std()),
        "tensors": {k: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
                    for k, t in sorted(tensors.items())},
    }
    json.dump(meta, open(os.path.join(args.out, "meta.json"), "w"), indent=1)
    print(f"{args.out}: perturb {args.perturb}, {len(tensors)} tensors, experts held {set(layouts.values())}, "
          f"loading info clean, vs tiny-a logits rel L2 {rel:.3e} argmax {agree * 100:.1f}%, greedy {greedy}")


if __name__ == "__main__":
    main()
