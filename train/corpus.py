"""Builds the training corpus: the Python standard library's source as Debian ships it
(PSF licence), files in sorted order, each preceded by a "# file: <name>" line. Every 20th file
(by a hash of its path) is held out. Tokenized with the real DeepSeek-Coder tokenizer through
`hondo tokenize`. Prints the SHA-256 of both texts so a run can be reproduced exactly."""
import glob
import hashlib
import os
import subprocess
import sys

import numpy as np

hondo, vocab, out = sys.argv[1], sys.argv[2], sys.argv[3]
root = "/usr/lib/python3.11"
skip = ("/test/", "/tests/", "/idle_test/", "/site-packages/", "/dist-packages/", "/__pycache__/")
files = sorted(f for f in glob.glob(root + "/**/*.py", recursive=True) if not any(s in f for s in skip))
train, held = [], []
for f in files:
    name = os.path.relpath(f, root)
    with open(f, encoding="utf-8", errors="replace") as fh:
        text = f"# file: {name}\n" + fh.read() + "\n"
    (held if int(hashlib.sha256(name.encode()).hexdigest(), 16) % 20 == 0 else train).append(text)
os.makedirs(out, exist_ok=True)
for split, texts in (("train", train), ("heldout", held)):
    text = "".join(texts)
    path = f"{out}/{split}.txt"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    ids = [int(t) for t in subprocess.check_output([hondo, "tokenize", "-m", vocab, "-f", path]).split()]
    np.array(ids, dtype=np.uint16).tofile(f"{out}/{split}.u16")
    print(f"{split}: {len(texts)} files, {len(text.encode())} bytes, {len(ids)} tokens, "
          f"sha256 {hashlib.sha256(text.encode()).hexdigest()}")
