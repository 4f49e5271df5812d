"""PyTorch eager reference for the student benchmark: the student of lib/sim/student.ts and one on-policy
distillation step of bench/student.ts, at a fixed thread count.

Architecture (lib/sim/student.ts, pre-LayerNorm GPT-2 layout, float32):
  x0     = E[y] + Pos[t - start_b]                   E [V, D], Pos [C, D] (positions before start_b read Pos[0])
  block  x = x + Attn(LN1(x)) Wo + bo,  q k v = LN1(x) Wqkv + bqkv  (one fused [D, 3D] projection, heads H)
         x = x + relu(LN2(x) W1 + b1) W2 + b2           W1 [D, mlpRatio D]
  logits = LNf(x) Wout                                   Wout [D, V], untied, no bias; LayerNorm eps 1e-5
  attention of query column i over key columns start_b <= j <= i, scores / sqrt(dh); query columns before
  start_b attend to nothing and output 0 (their outputs are never used).
opdlab keeps weights as [in, out]; nn.Linear keeps [out, in]: `load_weights` transposes.

Step (bench/student.ts):
  sampling   KV-cached: prefill the prompts, then one batched decode per position; y ~ softmax(z) with <pad>
             and <bos> banned; records log q(y) and the raw log pS(y) as opdlab's sampler does
  training   z = logits at the response columns only; A = sg[log pT(y) - log pS(y)];
             loss = token-mean of -A log pS(y); backward; Adam(lr, (0.9, 0.999), eps 1e-8)
  teacher    a fixed random logits tensor [B R, V] (N(0, 2^2)), made outside the timed region

Usage:
  /usr/bin/python3 bench/reference/student.py bench '<config json>' <threads> <reps> <warmup>
      prints one JSON line: median ms of sampling, forward+backward, optimiser and the whole step
  /usr/bin/python3 bench/reference/student.py parity <in.json> <out.json>
      loads opdlab's weights and a batch, writes logits of the full pass, the response logits, teacher-forced
      KV-cached decode logits, the OPD loss, every parameter's gradient and the weights after one Adam step
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, BOS = 0, 1  # lib/sim/vocab.ts
LN_EPS = 1e-5


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.d, self.h, self.dh = d, heads, d // heads
        self.ln1 = nn.LayerNorm(d, eps=LN_EPS)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=LN_EPS)
        self.fc1 = nn.Linear(d, mlp_ratio * d)
        self.fc2 = nn.Linear(mlp_ratio * d, d)

    def mlp(self, x):
        return self.fc2(F.relu(self.fc1(self.ln2(x))))

    def forward(self, x, allowed):
        """x [B, T, D]; allowed [B, 1, T, T] bool (query i may attend key j)."""
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.h, self.dh).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh))
        p = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
        p = p.masked_fill(~allowed.any(-1, keepdim=True), 0.0)  # query columns in the left padding: output 0
        a = (p @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(a)
        return x + self.mlp(x)

    def step(self, x, cache_k, cache_v, col, key_mask):
        """One new column per row. x [B, D]; cache_k/v [B, H, C, dh] (written at col); key_mask [B, 1, col+1].
        Decoded columns lie past every row's prompt start, so each row attends to at least one key."""
        B, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        cache_k[:, :, col] = k.view(B, self.h, self.dh)
        cache_v[:, :, col] = v.view(B, self.h, self.dh)
        # one query per row: broadcast multiply + sum is ~3x faster here than matmul, whose batched CPU path
        # loops over the B H small products
        q = q.view(B, self.h, 1, self.dh)
        s = (cache_k[:, :, : col + 1] * q).sum(-1) * (1.0 / math.sqrt(self.dh))  # [B, H, col+1]
        p = torch.softmax(s.masked_fill(~key_mask, float("-inf")), dim=-1)
        a = (p.unsqueeze(-1) * cache_v[:, :, : col + 1]).sum(2).reshape(B, D)
        x = x + self.proj(a)
        return x + self.mlp(x)


class Student(nn.Module):
    def __init__(self, vocabSize=256, context=48, layers=2, width=64, heads=4, mlpRatio=4, initStd=0.02, **_):
        super().__init__()
        self.V, self.C, self.D, self.H = vocabSize, context, width, heads
        self.tok = nn.Embedding(vocabSize, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlpRatio) for _ in range(layers))
        self.lnf = nn.LayerNorm(width, eps=LN_EPS)
        self.out = nn.Linear(width, vocabSize, bias=False)
        # GPT-2 initialisation as in student.ts (the benchmark's timing does not depend on the values)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif ".ln" in name or name.startswith("lnf"):
                    p.fill_(1.0)
                else:
                    std = initStd / math.sqrt(2 * layers) if ("proj" in name or "fc2" in name) else initStd
                    p.normal_(0.0, std)

    # ---- training pass -------------------------------------------------------------------------------------
    def hidden(self, tokens, start):
        """tokens [B, T] long, start [B] long -> residual stream [B, T, D]."""
        B, T = tokens.shape
        cols = torch.arange(T)
        pos = (cols[None, :] - start[:, None]).clamp(min=0)
        allowed = (cols[None, None, :] <= cols[None, :, None]) & (cols[None, None, :] >= start[:, None, None])
        x = self.tok(tokens) + self.pos(pos)
        for blk in self.blocks:
            x = blk(x, allowed[:, None])
        return x

    def forward(self, tokens, start):
        """Logits at every column [B, T, V]."""
        return self.out(self.lnf(self.hidden(tokens, start)))

    def response_logits(self, tokens, start, P, R):
        """Logits predicting each response token [B R, V] from tokens [B, P + R] (student.ts responseLogits)."""
        x = self.hidden(tokens[:, : P + R - 1], start)
        return self.out(self.lnf(x[:, P - 1 : P - 1 + R].reshape(-1, self.D)))

    # ---- KV-cached sampling --------------------------------------------------------------------------------
    def new_cache(self, B, capacity):
        dh = self.D // self.H
        return [(torch.zeros(B, self.H, capacity, dh), torch.zeros(B, self.H, capacity, dh)) for _ in self.blocks]

    def prefill(self, prompts, start, cache):
        """prompts [B, P]: fills cache columns 0 .. P - 1, returns logits for column P [B, V]."""
        B, P = prompts.shape
        cols = torch.arange(P)
        pos = (cols[None, :] - start[:, None]).clamp(min=0)
        allowed = ((cols[None, None, :] <= cols[None, :, None]) & (cols[None, None, :] >= start[:, None, None]))[:, None]
        x = self.tok(prompts) + self.pos(pos)
        for blk, (ck, cv) in zip(self.blocks, cache):
            h = blk.ln1(x)
            q, k, v = blk.qkv(h).split(self.D, dim=-1)
            q, k, v = (t.view(B, P, blk.h, blk.dh).transpose(1, 2) for t in (q, k, v))
            ck[:, :, :P] = k
            cv[:, :, :P] = v
            s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(blk.dh))
            p = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
            p = p.masked_fill(~allowed.any(-1, keepdim=True), 0.0)
            x = x + blk.proj((p @ v).transpose(1, 2).reshape(B, P, self.D))
            x = x + blk.mlp(x)
        return self.out(self.lnf(x[:, -1]))

    def decode(self, tokens, start, cache, col, key_mask_all):
        """Feed one token per row at column col; returns logits for the next column [B, V]."""
        pos = (col - start).clamp(min=0)
        x = self.tok(tokens) + self.pos(pos)
        key_mask = key_mask_all[:, :, : col + 1]
        for blk, (ck, cv) in zip(self.blocks, cache):
            x = blk.step(x, ck, cv, col, key_mask)
        return self.out(self.lnf(x))

    @torch.no_grad()
    def sample(self, prompts, start, R, generator):
        """y ~ softmax(z) for R positions (no stop token), <pad> and <bos> banned. Returns tokens [B, P + R],
        the sampler's log q(y) [B, R] and the raw log pS(y) [B, R]."""
        B, P = prompts.shape
        T = P + R
        cache = self.new_cache(B, T - 1)
        cols = torch.arange(T - 1)
        key_mask_all = (cols[None, None, :] >= start[:, None, None])  # [B, 1, T - 1]
        banned = torch.zeros(self.V, dtype=torch.bool)
        banned[[PAD, BOS]] = True
        out = torch.empty(B, R, dtype=torch.long)
        logq = torch.empty(B, R)
        raw = torch.empty(B, R)
        logits = self.prefill(prompts, start, cache)
        for t in range(R):
            lp = torch.log_softmax(logits, -1)
            lq = torch.log_softmax(logits.masked_fill(banned, float("-inf")), -1)
            y = torch.multinomial(lq.exp(), 1, generator=generator)  # [B, 1]
            out[:, t] = y[:, 0]
            logq[:, t] = lq.gather(1, y)[:, 0]
            raw[:, t] = lp.gather(1, y)[:, 0]
            if t == R - 1:
                break
            logits = self.decode(y[:, 0], start, cache, P + t, key_mask_all)
        return torch.cat([prompts, out], 1), logq, raw


def opd_loss(model, tokens, start, P, R, mask, teacher):
    """Token-mean of -A log pS(y), A = sg[log pT(y) - log pS(y)] (lib/objectives/opd.ts, defaults)."""
    y = tokens[:, P:].reshape(-1, 1)
    lps = torch.log_softmax(model.response_logits(tokens, start, P, R), -1).gather(1, y)[:, 0]
    with torch.no_grad():
        lpt = torch.log_softmax(teacher, -1).gather(1, y)[:, 0]
    adv = (lpt - lps).detach()
    m = mask.reshape(-1)
    return -(adv * lps * m).sum() / m.sum()


# ---- weights in opdlab's canonical names ---------------------------------------------------------------------
def canonical_params(model):
    """(canonical name, parameter, transpose?) in lib/sim/student.ts parameterSpecs order."""
    out = [("tokEmb", model.tok.weight, False), ("posEmb", model.pos.weight, False)]
    for l, b in enumerate(model.blocks):
        out += [
            (f"h{l}.ln1.g", b.ln1.weight, False), (f"h{l}.ln1.b", b.ln1.bias, False),
            (f"h{l}.attn.wqkv", b.qkv.weight, True), (f"h{l}.attn.bqkv", b.qkv.bias, False),
            (f"h{l}.attn.wo", b.proj.weight, True), (f"h{l}.attn.bo", b.proj.bias, False),
            (f"h{l}.ln2.g", b.ln2.weight, False), (f"h{l}.ln2.b", b.ln2.bias, False),
            (f"h{l}.mlp.w1", b.fc1.weight, True), (f"h{l}.mlp.b1", b.fc1.bias, False),
            (f"h{l}.mlp.w2", b.fc2.weight, True), (f"h{l}.mlp.b2", b.fc2.bias, False),
        ]
    out += [("lnf.g", model.lnf.weight, False), ("lnf.b", model.lnf.bias, False), ("wout", model.out.weight, True)]
    return out


def load_weights(model, weights):
    """weights: canonical name -> flat list in opdlab's layout ([in, out] for matrices)."""
    with torch.no_grad():
        for name, p, tr in canonical_params(model):
            w = torch.tensor(weights[name], dtype=torch.float32)
            if tr:
                w = w.view(p.shape[1], p.shape[0]).t()
            p.copy_(w.view(p.shape))


def to_canonical(t, tr):
    return (t.t() if tr else t).contiguous().reshape(-1).tolist()


# ---- modes ---------------------------------------------------------------------------------------------------
def loaded_blas():
    """Which BLAS this process loaded. Debian's python3-torch calls whichever libblas.so.3 the system (or
    LD_LIBRARY_PATH) provides: netlib's reference BLAS unless an optimised one (e.g. OpenBLAS) is installed."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1].rsplit("/", 1)[-1]})
    except OSError:
        return "unknown"
    if any("openblas" in l for l in libs):
        return "OpenBLAS"
    if any(l.rsplit("/", 2)[-2] == "blas" for l in libs):
        return "netlib reference BLAS"
    return ",".join(l.rsplit("/", 1)[-1] for l in libs) or "none"


def bench(cfg, threads, reps, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    s = cfg["student"]
    model = Student(**s)
    V = model.V
    B, P, R = cfg["prompts"] * cfg["group"], cfg["promptLength"], cfg["responseLength"]
    g = torch.Generator().manual_seed(1)
    distinct = torch.randint(4, V, (cfg["prompts"], P), generator=g)
    distinct[:, 0] = BOS
    prompts = distinct.repeat_interleave(cfg["group"], 0)
    start = torch.zeros(B, dtype=torch.long)
    teacher = 2 * torch.randn(B * R, V, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["learningRate"], betas=(0.9, 0.999), eps=1e-8)
    runs = []
    loss = None
    for i in range(warmup + reps):
        gen = torch.Generator().manual_seed(i)
        t0 = time.perf_counter()
        tokens, _logq, _raw = model.sample(prompts, start, R, gen)
        mask = torch.ones(B, R)
        t1 = time.perf_counter()
        out = opd_loss(model, tokens, start, P, R, mask, teacher)
        out.backward()
        loss = out.item()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if i >= warmup:
            runs.append([(t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3])

    def med(k):
        xs = sorted(r[k] for r in runs)
        n = len(xs)
        return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

    print(json.dumps({
        "config": cfg["name"], "threads": threads, "torch": torch.__version__, "blas": loaded_blas(),
        "sampleMs": med(0), "forwardBackwardMs": med(1), "optimiserMs": med(2), "stepMs": med(3),
        "loss": loss, "tokensPerStep": B * R, "parameters": sum(p.numel() for p in model.parameters()),
    }))


def parity(in_path, out_path):
    torch.set_num_threads(1)
    doc = json.load(open(in_path))
    c = doc["config"]
    model = Student(**c)
    load_weights(model, doc["weights"])
    B, P, R = doc["B"], doc["P"], doc["R"]
    tokens = torch.tensor(doc["tokens_BT"], dtype=torch.long).view(B, P + R)
    start = torch.tensor(doc["start_B"], dtype=torch.long)
    mask = torch.tensor(doc["mask_BR"], dtype=torch.float32).view(B, R)
    teacher = torch.tensor(doc["teacher_NV"], dtype=torch.float32).view(B * R, model.V)
    out = {}
    with torch.no_grad():
        out["logits_BTV"] = model(tokens, start).reshape(-1).tolist()
        # teacher-forced KV-cached decoding: prefill the prompts, then feed the response tokens one by one
        T = P + R
        cache = model.new_cache(B, T - 1)
        key_mask_all = torch.arange(T - 1)[None, None, :] >= start[:, None, None]
        steps = [model.prefill(tokens[:, :P], start, cache)]
        for t in range(R - 1):
            steps.append(model.decode(tokens[:, P + t], start, cache, P + t, key_mask_all))
        out["decodeLogits_RBV"] = torch.stack(steps).reshape(-1).tolist()
        out["responseLogits_NV"] = model.response_logits(tokens, start, P, R).reshape(-1).tolist()
    loss = opd_loss(model, tokens, start, P, R, mask, teacher)
    loss.backward()
    out["loss"] = loss.item()
    out["grads"] = {name: to_canonical(p.grad, tr) for name, p, tr in canonical_params(model)}
    opt = torch.optim.Adam(model.parameters(), lr=doc["learningRate"], betas=(0.9, 0.999), eps=1e-8)
    opt.step()
    out["weightsAfterStep"] = {name: to_canonical(p.detach(), tr) for name, p, tr in canonical_params(model)}
    json.dump(out, open(out_path, "w"))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "bench":
        bench(json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "parity":
        parity(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
