"""DeepSeek-V2 architecture in PyTorch: the training code of hondo's bundled model and an
independent reference for hondo's C++ engine (development tool; never needed at run time).

Written from the DeepSeek-V2 / V3 papers and DeepSeek's published semantics:
  MLA   c_t = RMSNorm(W_DKV h_t) (cached), k^R_t = RoPE(W_KR h_t) shared by the heads,
        k_t,i = [W_UK,i c_t ; k^R_t], v_t,i = W_UV,i c_t, q_t,i = [q^C ; RoPE(q^R)]
  MoE   shared experts + top-k routed experts; softmax (V2) or sigmoid + selection bias (V3)
        scores, optional group-limited selection, gates from unbiased scores
  RoPE  interleaved pairs (x[2i], x[2i+1]); YaRN frequency blend when configured
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab: int = 32256
    dim: int = 192
    n_layers: int = 4
    n_heads: int = 4
    q_lora_rank: int = 0          # 0: direct query projection (as V2-Lite)
    kv_lora_rank: int = 64
    qk_nope: int = 32
    qk_rope: int = 16
    v_head: int = 32
    n_dense_lead: int = 1
    inter_dim: int = 512          # dense FFN
    moe_inter_dim: int = 128      # one expert
    n_experts: int = 8
    n_used: int = 2
    n_shared: int = 1
    n_groups: int = 1
    n_groups_used: int = 1
    score_func: str = "softmax"   # or "sigmoid" (then a selection bias exists)
    norm_topk: bool = False
    route_scale: float = 1.0
    rope_theta: float = 10000.0
    yarn_factor: float = 0.0      # > 0: YaRN over yarn_original_ctx
    yarn_original_ctx: int = 4096
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale_all_dim: float = 0.0
    rms_eps: float = 1e-6
    ctx: int = 512
    tied: bool = True             # output projection = token embedding

    @property
    def qk_head(self):
        return self.qk_nope + self.qk_rope


def rope_frequencies(c: Config) -> torch.Tensor:
    """inv_freq[i] for the rotary pairs, with DeepSeek's YaRN blend when configured."""
    d = c.qk_rope
    f = 1.0 / (c.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    if c.yarn_factor > 0:
        def corr(rot):
            return d * math.log(c.yarn_original_ctx / (rot * 2 * math.pi)) / (2 * math.log(c.rope_theta))
        lo = max(math.floor(corr(c.beta_fast)), 0)
        hi = min(math.ceil(corr(c.beta_slow)), d - 1)
        if lo == hi:
            hi += 0.001
        ramp = ((torch.arange(d // 2, dtype=torch.float64) - lo) / (hi - lo)).clamp(0, 1)
        f = f / c.yarn_factor * ramp + f * (1 - ramp)
    return f


def apply_rope(x: torch.Tensor, pos: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """x: [..., T, d] with interleaved pairs; pos: [T]."""
    ang = pos.double()[:, None] * inv_freq[None, :]          # [T, d/2]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MLA(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        H = c.n_heads
        if c.q_lora_rank:
            self.wq_a = nn.Linear(c.dim, c.q_lora_rank, bias=False)
            self.q_norm = RMSNorm(c.q_lora_rank, c.rms_eps)
            self.wq_b = nn.Linear(c.q_lora_rank, H * c.qk_head, bias=False)
        else:
            self.wq = nn.Linear(c.dim, H * c.qk_head, bias=False)
        self.wkv_a = nn.Linear(c.dim, c.kv_lora_rank + c.qk_rope, bias=False)
        self.kv_norm = RMSNorm(c.kv_lora_rank, c.rms_eps)
        self.wkv_b = nn.Linear(c.kv_lora_rank, H * (c.qk_nope + c.v_head), bias=False)
        self.wo = nn.Linear(H * c.v_head, c.dim, bias=False)
        self.scale = c.qk_head ** -0.5
        if c.yarn_factor > 1 and c.mscale_all_dim > 0:
            m = 0.1 * c.mscale_all_dim * math.log(c.yarn_factor) + 1.0
            self.scale *= m * m

    def forward(self, x, pos, inv_freq):
        c = self.c
        B, T, _ = x.shape
        H = c.n_heads
        q = self.wq_b(self.q_norm(self.wq_a(x))) if c.q_lora_rank else self.wq(x)
        q = q.view(B, T, H, c.qk_head).transpose(1, 2)                   # [B, H, T, qk]
        q_nope, q_rope = q.split([c.qk_nope, c.qk_rope], dim=-1)
        q_rope = apply_rope(q_rope, pos, inv_freq)
        kv = self.wkv_a(x)
        latent, k_rope = kv.split([c.kv_lora_rank, c.qk_rope], dim=-1)
        latent = self.kv_norm(latent)                                     # [B, T, L]
        k_rope = apply_rope(k_rope, pos, inv_freq)                        # [B, T, R]
        kvd = self.wkv_b(latent).view(B, T, H, c.qk_nope + c.v_head).transpose(1, 2)
        k_nope, v = kvd.split([c.qk_nope, c.v_head], dim=-1)              # decompressed
        k = torch.cat([k_nope, k_rope[:, None].expand(B, H, T, c.qk_rope)], dim=-1)
        qf = torch.cat([q_nope, q_rope], dim=-1)
        att = (qf @ k.transpose(-1, -2)) * self.scale                     # [B, H, T, T]
        mask = torch.full((T, T), float("-inf"), dtype=att.dtype).triu(1)
        att = (att + mask).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * c.v_head)
        return self.wo(o)


class FFN(nn.Module):
    def __init__(self, dim, inter):
        super().__init__()
        self.w1 = nn.Linear(dim, inter, bias=False)  # gate
        self.w3 = nn.Linear(dim, inter, bias=False)  # up
        self.w2 = nn.Linear(inter, dim, bias=False)  # down

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoE(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.gate = nn.Linear(c.dim, c.n_experts, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.n_experts), requires_grad=False) if c.score_func == "sigmoid" else None
        self.experts = nn.ModuleList(FFN(c.dim, c.moe_inter_dim) for _ in range(c.n_experts))
        self.shared = FFN(c.dim, c.moe_inter_dim * c.n_shared)
        self.balance_loss = torch.zeros(())

    def route(self, x):
        """x: [N, dim] -> (weights [N, k], indices [N, k], scores [N, n_experts])."""
        c = self.c
        logits = self.gate(x)
        scores = logits.softmax(-1) if c.score_func == "softmax" else logits.sigmoid()
        choice = scores if self.bias is None else scores + self.bias
        if c.n_groups > 1:
            g = choice.view(x.size(0), c.n_groups, -1)
            gs = g.amax(-1) if self.bias is None else g.topk(2, dim=-1)[0].sum(-1)
            keep = gs.topk(c.n_groups_used, dim=-1)[1]
            mask = torch.ones_like(gs, dtype=torch.bool).scatter_(1, keep, False)
            choice = g.masked_fill(mask[..., None], float("-inf")).flatten(1)
        idx = choice.topk(c.n_used, dim=-1)[1]
        w = scores.gather(1, idx)
        if c.norm_topk:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return w * c.route_scale, idx, scores

    def forward(self, x):
        c = self.c
        shape = x.shape
        x = x.reshape(-1, c.dim)
        w, idx, scores = self.route(x)
        y = self.shared(x)
        for e in range(c.n_experts):
            tok, slot = torch.where(idx == e)
            if tok.numel():
                y = y.index_add(0, tok, self.experts[e](x[tok]) * w[tok, slot, None])
        # Expert-level balance loss (DeepSeek-V2 paper, eq. 23): sum_i f_i * P_i
        f = torch.zeros(c.n_experts).index_add(0, idx.flatten(), torch.ones(idx.numel())) * c.n_experts / idx.numel()
        self.balance_loss = (f * scores.mean(0)).sum()
        return y.view(shape)


class Block(nn.Module):
    def __init__(self, c: Config, layer: int):
        super().__init__()
        self.attn_norm = RMSNorm(c.dim, c.rms_eps)
        self.attn = MLA(c)
        self.ffn_norm = RMSNorm(c.dim, c.rms_eps)
        self.ffn = FFN(c.dim, c.inter_dim) if layer < c.n_dense_lead else MoE(c)

    def forward(self, x, pos, inv_freq):
        x = x + self.attn(self.attn_norm(x), pos, inv_freq)
        return x + self.ffn(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(Block(c, i) for i in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.rms_eps)
        self.head = None if c.tied else nn.Linear(c.dim, c.vocab, bias=False)
        self.register_buffer("inv_freq", rope_frequencies(c), persistent=False)

    def hidden(self, tokens):
        """tokens: [B, T] -> final normalised hidden states [B, T, dim]"""
        pos = torch.arange(tokens.size(1))
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, pos, self.inv_freq)
        return self.norm(x)

    def output_weight(self):
        return self.embed.weight if self.head is None else self.head.weight

    def forward(self, tokens):
        """tokens: [B, T] -> logits [B, T, vocab]"""
        return self.hidden(tokens) @ self.output_weight().t()

    def balance_loss(self):
        return sum(l.ffn.balance_loss for l in self.layers if isinstance(l.ffn, MoE))
