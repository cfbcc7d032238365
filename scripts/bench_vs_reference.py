#!/usr/bin/env python3
"""Side by side on the same random weights: our `q3tts bench` and the reference implementation
(qwen-tts 0.1.1, PyTorch), alternately in one invocation, 2 threads pinned in both.

Not part of CI (needs the reference's Python venv, ~4 GB, and minutes per model).

    scripts/bench_vs_reference.py [--dtype f32,bf16] [--frames 16] [--previous-bin OLD_Q3TTS]

What it does:
  1. builds `q3tts` in release mode (or uses --bin);
  2. writes one random-weight 0.6B CustomVoice checkpoint in the real layout (bf16 weights,
     tokenizer files, speech_tokenizer/) to a temporary directory: `q3tts bench --write-checkpoint`;
  3. per dtype, alternately: ours (`q3tts bench --model DIR`), the reference (this script
     re-run under $Q3TTS_REF_VENV/bin/python with --reference-worker), and optionally a previous
     build of ours (--previous-bin; e.g. `git worktree add /tmp/old REV && cargo build
     --release -p q3tts --manifest-path /tmp/old/Cargo.toml`). Same text (a 41-position
     prompt), EOS suppressed for a fixed frame count, 1 warm-up and the median of 3, each under
     `taskset -c 0,1` with 2 threads; the load average is printed with every figure.

The reference venv (outside the repository):
    VENV=${Q3TTS_REF_VENV:-$HOME/.cache/q3tts-ref-venv}
    python3 -m venv $VENV && $VENV/bin/pip install qwen-tts==0.1.1     # ~4 GB, ~4 min
Without it, only our side runs.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TEXT = "The quick brown fox jumps over"  # 41 prompt positions with the preset tokenizer
KEYS = ["prefill_ms", "talker_ms_per_frame", "code_predictor_ms_per_frame", "decoder_ms_per_frame",
        "frames_per_s", "generation_only_frames_per_s", "end_to_end_frames_per_s", "rtf", "ttfa_s",
        "peak_rss_mb", "achieved_gbs", "read_gbs_n_threads"]


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pinned(cmd):
    env = dict(os.environ, RAYON_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    pin = ["taskset", "-c", "0,1"] if shutil.which("taskset") else []
    return subprocess.run(pin + cmd, env=env, capture_output=True, text=True)


def ours(binary, model_dir, dtype, frames, required=True):
    p = pinned([binary, "bench", "--model", model_dir, "--dtype", dtype, "--threads", "2",
                "--frames", str(frames), "--first-chunk", "2", "--warmup", "1", "--runs", "3",
                "--text", TEXT, "--json"])
    if p.returncode != 0:
        if not required:  # e.g. a previous build without this dtype
            print(f"{binary} bench failed:\n{p.stderr[-2000:]}", file=sys.stderr)
            return None
        raise SystemExit(f"{binary} bench failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def reference(python, model_dir, dtype, frames):
    p = pinned([python, os.path.abspath(__file__), "--reference-worker", model_dir,
                "--dtype", dtype, "--frames", str(frames)])
    if p.returncode != 0:
        print(f"reference failed:\n{p.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def show(name, r):
    if r is None:
        print(f"  {name:<10} (no result)")
        return
    cells = "  ".join(f"{k}={r[k]:.3g}" for k in KEYS if isinstance(r.get(k), (int, float)))
    print(f"  {name:<10} {cells}  [load {r.get('load_average', load())}]", flush=True)


def reference_worker(model_dir, dtype, frames):
    """Runs under the reference venv: 1 warm-up + 3 timed generate_custom_voice calls with EOS
    held off (min_new_tokens = max_new_tokens on the talker's generate); per-stage times from
    wrappers around talker.generate and code_predictor.generate."""
    import torch
    from qwen_tts import Qwen3TTSModel

    torch.set_num_threads(2)
    dt = torch.float32 if dtype == "f32" else torch.bfloat16
    t0 = time.perf_counter()
    tts = Qwen3TTSModel.from_pretrained(model_dir, device_map="cpu", dtype=dt)
    build_s = time.perf_counter() - t0
    talker = tts.model.talker
    cp = talker.code_predictor
    orig_t, orig_c = talker.generate, cp.generate
    clock = {}

    def t_gen(**kw):
        kw["min_new_tokens"] = kw["max_new_tokens"]
        t = time.perf_counter()
        clock.update(talker_start=t, cp_s=0.0, cp_first=None)
        res = orig_t(**kw)
        clock["talker_total"] = time.perf_counter() - t
        return res

    def c_gen(**kw):
        t = time.perf_counter()
        if clock["cp_first"] is None:
            clock["cp_first"] = t
        res = orig_c(**kw)
        clock["cp_s"] += time.perf_counter() - t
        return res

    talker.generate, cp.generate = t_gen, c_gen
    runs = []
    for i in range(4):
        t = time.perf_counter()
        wavs, sr = tts.generate_custom_voice(text=TEXT, speaker="ryan", language="english",
                                             max_new_tokens=frames + 1)
        wall = time.perf_counter() - t
        n = len(wavs[0]) // 1920
        prefill = clock["cp_first"] - clock["talker_start"]
        talker_s = clock["talker_total"] - prefill - clock["cp_s"]
        gen_s = clock["talker_total"]
        decode_s = wall - gen_s
        if i > 0:
            runs.append({
                "frames": n, "prefill_ms": prefill * 1e3, "talker_ms_per_frame": talker_s * 1e3 / n,
                "code_predictor_ms_per_frame": clock["cp_s"] * 1e3 / n,
                "decoder_ms_per_frame": decode_s * 1e3 / n,
                "frames_per_s": n / (talker_s + clock["cp_s"]), "rtf": wall / (len(wavs[0]) / sr),
            })
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    with open("/proc/self/status") as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    out.update(peak_rss_mb=hwm * 1024 / 1e6, build_s=build_s, load_average=load())
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="f32", help="comma-separated: f32,bf16,int8 (int8: ours only)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--bin", help="our q3tts binary (default: build target/release/q3tts)")
    ap.add_argument("--previous-bin", help="an earlier q3tts build to run alongside")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint directory")
    ap.add_argument("--reference-worker", metavar="DIR", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.reference_worker:
        return reference_worker(a.reference_worker, a.dtype, a.frames)

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = a.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-p", "q3tts"], cwd=root, check=True)
        binary = os.path.join(root, "target/release/q3tts")
    venv = os.environ.get("Q3TTS_REF_VENV", os.path.expanduser("~/.cache/q3tts-ref-venv"))
    python = os.path.join(venv, "bin/python")
    if not os.path.exists(python):
        print(f"No reference venv at {venv}; only our side runs. Create it with:\n"
              f"  python3 -m venv {venv} && {venv}/bin/pip install qwen-tts==0.1.1   # ~4 GB, ~4 min\n"
              f"(or point Q3TTS_REF_VENV at an existing one).", file=sys.stderr)
        python = None

    tmp = tempfile.mkdtemp(prefix="q3tts-ref-bench-")
    try:
        print(f"writing the random 0.6B checkpoint to {tmp} (load {load()})", flush=True)
        subprocess.run([binary, "bench", "--size", "0.6b", "--write-checkpoint", tmp], check=True)
        for dtype in a.dtype.split(","):
            print(f"0.6B {dtype}, {a.frames} frames, 41-position prompt, 2 threads pinned, "
                  f"1 warm-up + median of 3", flush=True)
            show("ours", ours(binary, tmp, dtype, a.frames))
            # The reference has no int8 path.
            if python and dtype != "int8":
                show("reference", reference(python, tmp, dtype, a.frames))
            if a.previous_bin:
                show("previous", ours(a.previous_bin, tmp, dtype, a.frames, required=False))
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
