"""Trains hondo's bundled model: a tiny DeepSeek-V2-architecture coder (MLA + DeepSeekMoE) on
the Python standard library's source, tokenized with the real DeepSeek-Coder tokenizer.

  /usr/bin/python3 train/train.py --corpus DIR --steps N --out models/NAME.gguf --hondo build/hondo --vocab VOCAB.gguf

Deterministic: fixed seed, fixed data order, 2 threads. Logs step, loss, tokens seen and
held-out loss to <out>.train.csv."""
import argparse
import csv
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from export import export, round_to_f16_
from golden import write_golden
from model import Config, Transformer

ap = argparse.ArgumentParser()
ap.add_argument("--corpus", required=True)
ap.add_argument("--steps", type=int, default=1000)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--out", required=True)
ap.add_argument("--hondo", required=True)
ap.add_argument("--vocab", required=True)
ap.add_argument("--seed", type=int, default=1234)
ap.add_argument("--eval-every", type=int, default=100)
args = ap.parse_args()

torch.manual_seed(args.seed)
torch.set_num_threads(2)
train = torch.from_numpy(np.fromfile(f"{args.corpus}/train.u16", dtype=np.uint16).astype(np.int64))
held = torch.from_numpy(np.fromfile(f"{args.corpus}/heldout.u16", dtype=np.uint16).astype(np.int64))
c = Config(ctx=args.seq)
model = Transformer(c)
with torch.no_grad():  # small init: embeddings N(0, 0.02), matrices N(0, 0.02)
    for p in model.parameters():
        if p.dim() >= 2:
            p.normal_(0, 0.02)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
gen = torch.Generator().manual_seed(args.seed)
# Training scores the softmax over the tokens that occur in the training text only (13,681 of
# 32,256 for the Python stdlib): same gradients for every token that can be a target, ~2x less
# work. Evaluation and every exported logit use the full vocabulary.
seen = torch.unique(train)
remap = torch.full((c.vocab,), -1, dtype=torch.long)
remap[seen] = torch.arange(len(seen))
n_windows = (len(train) - 1) // args.seq


def lr_at(step):
    warm = max(1, args.steps // 20)
    if step < warm:
        return args.lr * (step + 1) / warm
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm))))


@torch.no_grad()
def heldout_loss(n_batches=4):
    model.eval()
    losses = []
    for b in range(n_batches):
        starts = torch.arange(b * args.batch, (b + 1) * args.batch) * args.seq
        x = torch.stack([held[s:s + args.seq] for s in starts])
        y = torch.stack([held[s + 1:s + args.seq + 1] for s in starts])
        losses.append(F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item())
    model.train()
    return sum(losses) / len(losses)


os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
log = open(os.path.splitext(args.out)[0] + ".train.csv", "w", newline="")
wr = csv.writer(log)
wr.writerow(["step", "tokens", "seconds", "lr", "train_loss", "heldout_loss"])
t0 = time.time()
for step in range(args.steps):
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    idx = torch.randint(0, n_windows, (args.batch,), generator=gen) * args.seq
    x = torch.stack([train[i:i + args.seq] for i in idx])
    y = torch.stack([train[i + 1:i + args.seq + 1] for i in idx])
    h = model.hidden(x)
    loss = F.cross_entropy((h @ model.output_weight()[seen].t()).flatten(0, 1), remap[y].flatten())
    total = loss + 0.01 * model.balance_loss()
    opt.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    last = step + 1 == args.steps
    hl = heldout_loss() if (step % args.eval_every == 0 or last) else ""
    wr.writerow([step, (step + 1) * args.batch * args.seq, round(time.time() - t0, 1), round(lr_at(step), 6), round(loss.item(), 4), hl and round(hl, 4)])
    log.flush()
    if hl != "":
        print(f"step {step} loss {loss.item():.3f} heldout {hl:.3f} {time.time() - t0:.0f}s", flush=True)

model.eval()
round_to_f16_(model)
os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
export(model, args.vocab, args.out, "hondo-coder-tiny", f16=True)
write_golden(model, args.hondo, args.out)
torch.save(model.state_dict(), os.path.splitext(args.out)[0] + ".pt")
print("wrote", args.out)
