"""Writes a trained (or random) Transformer as a deepseek2 GGUF file with the keys and tensor
names hondo and llama.cpp read; tokenizer metadata is copied from a vocab GGUF."""
import numpy as np
import torch

import gguf
from model import MoE, Transformer


def export(model: Transformer, vocab_gguf: str, path: str, name: str, f16: bool = True):
    c = model.c
    w = gguf.Writer()
    a = "deepseek2."
    u32 = lambda k, v: w.add(a + k, gguf.U32, int(v))
    w.add("general.architecture", gguf.STRING, "deepseek2")
    w.add("general.name", gguf.STRING, name)
    w.add("general.file_type", gguf.U32, 1 if f16 else 0)
    u32("block_count", c.n_layers)
    u32("context_length", c.ctx)
    u32("embedding_length", c.dim)
    u32("feed_forward_length", c.inter_dim)
    u32("attention.head_count", c.n_heads)
    u32("attention.head_count_kv", 1)
    w.add(a + "attention.layer_norm_rms_epsilon", gguf.F32, c.rms_eps)
    w.add(a + "rope.freq_base", gguf.F32, c.rope_theta)
    u32("rope.dimension_count", c.qk_rope)
    if c.yarn_factor > 0:
        w.add(a + "rope.scaling.type", gguf.STRING, "yarn")
        w.add(a + "rope.scaling.factor", gguf.F32, c.yarn_factor)
        u32("rope.scaling.original_context_length", c.yarn_original_ctx)
        w.add(a + "rope.scaling.yarn_log_multiplier", gguf.F32, 0.1 * c.mscale_all_dim)
    if c.q_lora_rank:
        u32("attention.q_lora_rank", c.q_lora_rank)
    u32("attention.kv_lora_rank", c.kv_lora_rank)
    u32("attention.key_length", c.kv_lora_rank + c.qk_rope)
    u32("attention.value_length", c.kv_lora_rank)
    u32("attention.key_length_mla", c.qk_head)
    u32("attention.value_length_mla", c.v_head)
    u32("leading_dense_block_count", c.n_dense_lead)
    u32("expert_feed_forward_length", c.moe_inter_dim)
    u32("expert_count", c.n_experts)
    u32("expert_used_count", c.n_used)
    u32("expert_shared_count", c.n_shared)
    if c.n_groups > 1:
        u32("expert_group_count", c.n_groups)
        u32("expert_group_used_count", c.n_groups_used)
    u32("expert_gating_func", 1 if c.score_func == "softmax" else 2)
    if c.norm_topk:
        w.add(a + "expert_weights_norm", gguf.BOOL, True)
    w.add(a + "expert_weights_scale", gguf.F32, c.route_scale)
    u32("vocab_size", c.vocab)
    for k, (t, v) in gguf.read_metadata(vocab_gguf).items():
        if k.startswith("tokenizer."):
            w.add(k, t, v)

    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    mat = lambda n, x: w.tensor(n, x, f16)   # matrices: F16 when asked
    vec = lambda n, x: w.tensor(n, x, False)  # norms and biases: F32
    mat("token_embd.weight", sd["embed.weight"])
    vec("output_norm.weight", sd["norm.weight"])
    if not c.tied:
        mat("output.weight", sd["head.weight"])
    H, L, N, V = c.n_heads, c.kv_lora_rank, c.qk_nope, c.v_head
    for i, layer in enumerate(model.layers):
        p, q = f"blk.{i}.", f"layers.{i}."
        vec(p + "attn_norm.weight", sd[q + "attn_norm.weight"])
        if c.q_lora_rank:
            mat(p + "attn_q_a.weight", sd[q + "attn.wq_a.weight"])
            vec(p + "attn_q_a_norm.weight", sd[q + "attn.q_norm.weight"])
            mat(p + "attn_q_b.weight", sd[q + "attn.wq_b.weight"])
        else:
            mat(p + "attn_q.weight", sd[q + "attn.wq.weight"])
        mat(p + "attn_kv_a_mqa.weight", sd[q + "attn.wkv_a.weight"])
        vec(p + "attn_kv_a_norm.weight", sd[q + "attn.kv_norm.weight"])
        kv_b = sd[q + "attn.wkv_b.weight"].reshape(H, N + V, L)
        mat(p + "attn_k_b.weight", kv_b[:, :N, :].transpose(0, 2, 1))  # [H, L, N]: W_UK^T
        mat(p + "attn_v_b.weight", kv_b[:, N:, :])                      # [H, V, L]: W_UV
        mat(p + "attn_output.weight", sd[q + "attn.wo.weight"])
        vec(p + "ffn_norm.weight", sd[q + "ffn_norm.weight"])
        if isinstance(layer.ffn, MoE):
            vec(p + "ffn_gate_inp.weight", sd[q + "ffn.gate.weight"])
            if layer.ffn.bias is not None:
                vec(p + "exp_probs_b.bias", sd[q + "ffn.bias"])
            stack = lambda k: np.stack([sd[f"{q}ffn.experts.{e}.{k}.weight"] for e in range(c.n_experts)])
            mat(p + "ffn_gate_exps.weight", stack("w1"))
            mat(p + "ffn_up_exps.weight", stack("w3"))
            mat(p + "ffn_down_exps.weight", stack("w2"))
            mat(p + "ffn_gate_shexp.weight", sd[q + "ffn.shared.w1.weight"])
            mat(p + "ffn_up_shexp.weight", sd[q + "ffn.shared.w3.weight"])
            mat(p + "ffn_down_shexp.weight", sd[q + "ffn.shared.w2.weight"])
        else:
            mat(p + "ffn_gate.weight", sd[q + "ffn.w1.weight"])
            mat(p + "ffn_up.weight", sd[q + "ffn.w3.weight"])
            mat(p + "ffn_down.weight", sd[q + "ffn.w2.weight"])
    w.write(path)


def round_to_f16_(model: Transformer):
    """Rounds every matrix as export(f16=True) stores it, so the reference computes with the
    exact weights the file holds."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(p.half().float())
