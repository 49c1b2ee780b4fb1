"""Held-out evaluation of the bundled model with the PyTorch reference, by the same method as
`hondo perplexity` (llama.cpp's): the text is tokenized with BOS, cut into chunks of n_ctx
tokens, each chunk's first token replaced by BOS, only the second half of each chunk scored.
Also a unigram baseline (training-set token frequencies, add-one smoothing) on the same
scored tokens. Writes <model>.eval.json, read by hondo's test."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

from golden import tokenize
from model import Config, Transformer

hondo, gguf_path, pt_path, text_path, train_u16 = sys.argv[1:6]
n_ctx, n_chunks = int(sys.argv[6]), int(sys.argv[7])
torch.set_num_threads(2)
model = Transformer(Config(ctx=n_ctx))
model.load_state_dict(torch.load(pt_path))
model.eval()
ids = [int(t) for t in subprocess.check_output([hondo, "tokenize", "-m", gguf_path, "--bos", "-f", text_path]).split()]
bos = ids[0]
n_chunks = min(n_chunks, len(ids) // n_ctx)
counts = np.bincount(np.fromfile(train_u16, dtype=np.uint16), minlength=model.c.vocab).astype(np.float64) + 1.0
unigram_logp = np.log(counts / counts.sum())
nll = nll2 = uni = 0.0
count = 0
first = n_ctx // 2
with torch.no_grad():
    for c in range(n_chunks):
        chunk = ids[c * n_ctx:(c + 1) * n_ctx]
        chunk[0] = bos
        logp = model(torch.tensor([chunk]))[0].double().log_softmax(-1)
        for j in range(first, n_ctx - 1):
            v = -float(logp[j, chunk[j + 1]])
            nll += v
            nll2 += v * v
            uni -= unigram_logp[chunk[j + 1]]
            count += 1
mean = nll / count
ppl = math.exp(mean)
stderr = math.sqrt(max(nll2 / count - mean * mean, 0) / (count - 1)) * ppl
result = {"model": os.path.basename(gguf_path), "text": os.path.basename(text_path), "n_ctx": n_ctx,
          "chunks": n_chunks, "scored_tokens": count, "reference_ppl": ppl, "reference_ppl_stderr": stderr,
          "unigram_ppl": math.exp(uni / count)}
with open(os.path.splitext(gguf_path)[0] + ".eval.json", "w") as fh:
    json.dump(result, fh, indent=1)
print(json.dumps(result))
