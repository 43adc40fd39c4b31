#!/usr/bin/env python3
"""cem_plan.py: the PyTorch reference for `mbrld-bench plan`: the same CEM
planning call as core/plan/planner.c (PETS: bound-capped variance, samples limited to
2 std (clamped here, resampled in C: the same work), alpha smoothing, TS-inf particles, Gaussian ensemble with soft
log-variance bounds and a learned reward head), written the way a careful
PyTorch user would: fp32, torch.inference_mode, batched matmuls over members
(torch.baddbmm), particles kept member-major so no gather per step, 2 threads,
and the environment a careful user sets (CAREFUL_ENV): OpenMP threads that
sleep instead of spinning between ops, and glibc malloc that neither trims
nor mmaps every large tensor afresh. Without them this script was 20x slower
on a busy 2-core machine (issue 11). GLIBC_TUNABLES is read when a process
starts, so the script re-executes itself once with CAREFUL_ENV unless the
environment has it already (`mbrld-bench plan` sets it on the command line);
--as-is runs in the environment it was given.

Prints one JSON line: {"preset", "s_per_call", "reps", "torch", "threads",
"env"}.
Not for: correctness checks of mbrld (the C tests do that)."""
import argparse
import json
import os
import statistics
import sys
import time

CAREFUL_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296",
}
if "--as-is" not in sys.argv and any(os.environ.get(k) != v for k, v in CAREFUL_ENV.items()):
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **CAREFUL_ENV})

import torch  # noqa: E402  (after the environment is settled)

PRESETS = {
    # obs, act, hidden layers, H, N, elites, iters, P
    "pets-halfcheetah": (18, 6, [200] * 4, 30, 500, 50, 5, 20),
    "pets-cartpole": (4, 1, [200] * 3, 30, 500, 50, 5, 20),
    "small": (18, 6, [64] * 2, 15, 200, 20, 3, 20),
}
MEMBERS = 5


def make_ensemble(obs, act, hidden, gen):
    dims = [obs + act] + hidden + [2 * (obs + 1)]
    layers = []
    for i in range(len(dims) - 1):
        std = 1.0 / (2.0 * dims[i] ** 0.5)
        W = (torch.randn(MEMBERS, dims[i], dims[i + 1], generator=gen) * std).clamp_(-2 * std, 2 * std)
        b = torch.zeros(MEMBERS, 1, dims[i + 1])
        layers.append((W, b))
    out = obs + 1
    max_lv = torch.full((MEMBERS, 1, out), 0.5)
    min_lv = torch.full((MEMBERS, 1, out), -10.0)
    norm = (torch.zeros(obs + act), torch.ones(obs + act), torch.zeros(out), torch.ones(out))
    return layers, max_lv, min_lv, norm


def forward(ens, x):
    """x: (E, M, in) raw -> mean, std: (E, M, out) raw."""
    layers, max_lv, min_lv, (in_m, in_s, out_m, out_s) = ens
    h = (x - in_m) / in_s
    for W, b in layers[:-1]:
        h = torch.nn.functional.silu(torch.baddbmm(b, h, W))
    W, b = layers[-1]
    o = torch.baddbmm(b, h, W)
    out = o.shape[-1] // 2
    mean, lv = o[..., :out], o[..., out:]
    lv = max_lv - torch.nn.functional.softplus(max_lv - lv)
    lv = min_lv + torch.nn.functional.softplus(lv - min_lv)
    return mean * out_s + out_m, torch.exp(0.5 * lv) * out_s


def plan(ens, obs0, cfg, low, high, gen):
    obs, act, _, H, N, K, iters, P = cfg
    E, alpha = MEMBERS, 0.1
    per = P // E                       # particles per member per candidate
    M = N * per                        # rows per member
    mean = ((low + high) / 2).expand(H, act).clone()
    var = (((high - low) / 4) ** 2).expand(H, act).clone()
    for _ in range(iters):
        lb, ub = mean - low, high - mean
        cvar = torch.minimum(torch.minimum((lb / 2) ** 2, (ub / 2) ** 2), var)
        z = torch.randn(N, H, act, generator=gen).clamp_(-2.0, 2.0)
        cand = (mean + cvar.sqrt() * z).clamp_(low, high)          # (N, H, A)
        s = obs0.expand(E, M, obs).clone()                          # TS-inf, member-major
        ret = torch.zeros(E, M)
        for t in range(H):
            a = cand[:, t, :].repeat_interleave(per, dim=0)         # (M, A)
            x = torch.cat([s, a.expand(E, M, act)], dim=-1)
            mu, sd = forward(ens, x)
            d = mu + sd * torch.randn(mu.shape, generator=gen)
            s = s + d[..., :obs]
            ret += d[..., obs]
        score = ret.view(E, N, per).permute(1, 0, 2).reshape(N, P).mean(dim=1)
        elites = cand[torch.topk(score, K).indices]
        mean = alpha * mean + (1 - alpha) * elites.mean(dim=0)
        var = alpha * var + (1 - alpha) * elites.var(dim=0, unbiased=False)
    return mean


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--as-is", action="store_true", help="keep the given environment")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    obs, act, hidden = cfg[0], cfg[1], cfg[2]
    gen = torch.Generator().manual_seed(1)
    ens = make_ensemble(obs, act, hidden, gen)
    low, high = -torch.ones(act), torch.ones(act)
    obs0 = torch.randn(obs, generator=gen)
    times = []
    with torch.inference_mode():
        plan(ens, obs0, cfg, low, high, gen)  # warm-up
        for _ in range(args.reps):
            t0 = time.perf_counter()
            plan(ens, obs0, cfg, low, high, gen)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"preset": args.preset, "s_per_call": statistics.median(times),
                      "reps": args.reps, "torch": torch.__version__, "threads": args.threads,
                      "env": {k: os.environ.get(k, "") for k in CAREFUL_ENV}}))


if __name__ == "__main__":
    main()
