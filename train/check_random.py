"""Exports random-weight models in several configurations and prints the reference logits
and greedy tokens next to hondo's (through its CLI), as an end-to-end cross-check of the
C++ engine against this independent implementation."""
import sys

import torch

from export import export
from golden import write_golden
from model import Config, Transformer

hondo, vocab, out = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
configs = {
    "v2lite": Config(dim=64, n_layers=3, n_heads=4, yarn_factor=40, mscale_all_dim=0.707, ctx=4096),
    "v3": Config(dim=64, n_layers=3, n_heads=4, q_lora_rank=48, n_experts=16, n_used=4, n_groups=8,
                 n_groups_used=4, score_func="sigmoid", norm_topk=True, route_scale=2.5,
                 yarn_factor=40, mscale_all_dim=1.0, ctx=4096),
}
for name, c in configs.items():
    m = Transformer(c).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.05) if p.dim() >= 2 else p.uniform_(0.9, 1.1)
        for l in m.layers:
            if getattr(l.ffn, "bias", None) is not None:
                l.ffn.bias.uniform_(-0.05, 0.05)
    path = f"{out}/check-{name}.gguf"
    export(m, vocab, path, name, f16=False)
    write_golden(m, hondo, path, n_greedy=16)
    print("wrote", path, "and its golden outputs")
