"""Golden outputs of the reference for a model file: the logits of every position of a few
fixed prompts and the greedy continuation of each, which hondo's test compares against.
  <stem>.golden.json: {"model", "n_vocab", "prompts": [{"text", "ids", "greedy"}]}
  <stem>.golden.bin:  float32 little-endian logits, prompt after prompt, position after position
"""
import json
import os
import subprocess

import numpy as np
import torch

PROMPTS = ["def fibonacci(", "import os\nimport sys\n\n\nclass ", "    for i in range(len(items)):\n        if "]


def tokenize(hondo, gguf_path, text):
    out = subprocess.check_output([hondo, "tokenize", "-m", gguf_path, "--bos", text])
    return [int(t) for t in out.split()]


def write_golden(model, hondo, gguf_path, n_greedy=32, prompts=PROMPTS):
    stem = os.path.splitext(gguf_path)[0]
    entries, blobs = [], []
    with torch.no_grad():
        for text in prompts:
            ids = tokenize(hondo, gguf_path, text)
            logits = model(torch.tensor([ids]))[0].double()       # [T, vocab]
            blobs.append(logits.float().numpy().astype("<f4").tobytes())
            seq = list(ids)
            for _ in range(n_greedy):
                seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
            entries.append({"text": text, "ids": ids, "greedy": seq[len(ids):]})
    with open(stem + ".golden.json", "w") as fh:
        json.dump({"model": os.path.basename(gguf_path), "n_vocab": model.c.vocab, "prompts": entries}, fh, indent=1)
    with open(stem + ".golden.bin", "wb") as fh:
        fh.write(b"".join(blobs))
