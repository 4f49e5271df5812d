"""PyTorch eager reference for the objective benchmark: loss + gradient w.r.t. the student logits.

Usage: /usr/bin/python3 bench/reference/objectives.py <objective> <N> <V> <threads> <reps>
Prints one JSON line {objective, n, v, ms (median), loss}. The maths matches bench/options.ts:
  opd       A = sg[log pT(y) - log pS(y)], loss = token-mean of -A log pS(y)
  aopd      eta = 0, teacher top-16, un-normalised forward KL on the support where pT(y) - pS(y) <= 0, OPD elsewhere
  gkd       JSD(beta = 0.5) on the full vocabulary (TRL generalized_jsd_loss), token-mean
  topk-rkl  reverse KL on the teacher's top-32, renormalised on both sides (Revisiting OPD), token-mean
Inputs are random like lib/objectives/synthetic.ts (not the same numbers: timing does not depend on them).
The teacher's log-softmax and top-K are inside the timed region, as they are for opdlab.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def make_inputs(n, v, seed=3):
    g = torch.Generator().manual_seed(seed)
    zs = 2 * torch.randn(n, v, generator=g)
    zt = zs + 2 * torch.randn(n, v, generator=g)
    y = torch.multinomial(F.softmax(zs, -1), 1, generator=g).squeeze(1)
    mask = torch.ones(n)
    return zs, zt, y, mask


def loss_fn(name, z, zt, y, mask):
    lps = F.log_softmax(z, -1)
    lpt = F.log_softmax(zt, -1)
    lps_y = lps.gather(1, y[:, None]).squeeze(1)
    lpt_y = lpt.gather(1, y[:, None]).squeeze(1)
    count = mask.sum()
    if name == "opd":
        adv = (lpt_y - lps_y).detach()
        return (-(adv * lps_y) * mask).sum() / count
    if name == "aopd":
        adv = (lpt_y - lps_y).detach()
        imit = ((lpt_y.exp() - lps_y.exp()) <= 0).to(z.dtype).detach()
        top_lpt, idx = lpt.topk(16, dim=-1)
        fkl = (top_lpt.exp() * (top_lpt - lps.gather(1, idx))).sum(-1)
        per = imit * fkl + (1 - imit) * (-(adv * lps_y))
        return (per * mask).sum() / count
    if name == "gkd":
        beta = 0.5
        log_m = torch.logsumexp(torch.stack([lps + math.log(1 - beta), lpt + math.log(beta)]), 0)
        kl_t = F.kl_div(log_m, lpt, reduction="none", log_target=True).sum(-1)
        kl_s = F.kl_div(log_m, lps, reduction="none", log_target=True).sum(-1)
        per = beta * kl_t + (1 - beta) * kl_s
        return (per * mask).sum() / count
    if name == "topk-rkl":
        top_lpt, idx = lpt.topk(32, dim=-1)
        s_hat = F.log_softmax(z.gather(1, idx), -1)
        t_hat = F.log_softmax(top_lpt, -1)
        per = (s_hat.exp() * (s_hat - t_hat)).sum(-1)
        return (per * mask).sum() / count
    raise SystemExit(f"unknown objective {name}")


def main():
    name, n, v, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    zs, zt, y, mask = make_inputs(n, v)
    times = []
    loss = None
    for r in range(reps + 1):
        z = zs.clone().requires_grad_(True)
        t0 = time.perf_counter()
        out = loss_fn(name, z, zt, y, mask)
        out.backward()
        dt = (time.perf_counter() - t0) * 1000
        loss = out.item()
        if r > 0:
            times.append(dt)
    times.sort()
    print(json.dumps({"objective": name, "n": n, "v": v, "threads": threads, "ms": times[len(times) // 2], "loss": loss}))


if __name__ == "__main__":
    main()
