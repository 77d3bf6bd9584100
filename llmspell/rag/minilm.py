"""A numpy forward pass of a BERT encoder (all-MiniLM-L6-v2): no torch, weights from safetensors.

The architecture is the public BERT one: word + position + token-type embeddings and LayerNorm,
then `num_hidden_layers` blocks of multi-head self-attention and a GELU feed-forward layer, each
followed by a residual connection and LayerNorm. Sentence vectors are the attention-masked mean of
the last hidden states, L2-normalised (the model's 1_Pooling and 2_Normalize modules).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from llmspell.rag._blas import one_blas_thread

F32 = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The few config.json fields the forward pass needs."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float
    max_position: int

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        """Read a Hugging Face BERT config.json."""
        c = json.loads(path.read_text(encoding="utf-8"))
        if c.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: unsupported hidden_act {c.get('hidden_act')!r} (only gelu)")
        return cls(hidden_size=int(c["hidden_size"]), num_layers=int(c["num_hidden_layers"]),
                   num_heads=int(c["num_attention_heads"]), intermediate_size=int(c["intermediate_size"]),
                   layer_norm_eps=float(c.get("layer_norm_eps", 1e-12)),
                   max_position=int(c.get("max_position_embeddings", 512)))


@dataclass(slots=True)
class _Layer:
    """Weights of one encoder block, linear weights pre-transposed to (in, out) for x @ W."""

    qkv_w: F32
    qkv_b: F32
    attn_out_w: F32
    attn_out_b: F32
    ln1_g: F32
    ln1_b: F32
    inter_w: F32
    inter_b: F32
    out_w: F32
    out_b: F32
    ln2_g: F32
    ln2_b: F32


def _erf(x: F32) -> F32:
    """erf to ~1e-7 absolute (Abramowitz & Stegun 7.1.26); numpy has no erf and scipy is not a dependency."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32, copy=False)


def _gelu(x: F32) -> F32:
    """Exact (erf) GELU, as BERT's `gelu` activation."""
    return (0.5 * x * (1.0 + _erf(x * np.float32(1.0 / math.sqrt(2.0))))).astype(np.float32, copy=False)


def _layer_norm(x: F32, g: F32, b: F32, eps: float) -> F32:
    """LayerNorm over the last axis."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return (xc / np.sqrt(var + np.float32(eps))) * g + b


class BertEncoder:
    """BERT encoder weights in memory plus the batched forward pass."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file

        self.config = BertConfig.from_file(model_dir / "config.json")
        w = load_file(str(model_dir / "model.safetensors"))
        p = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

        def g(name: str) -> F32:
            return np.ascontiguousarray(w[p + name], dtype=np.float32)

        self.word = g("embeddings.word_embeddings.weight")
        self.pos = g("embeddings.position_embeddings.weight")
        self.type0 = g("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln_g = g("embeddings.LayerNorm.weight")
        self.emb_ln_b = g("embeddings.LayerNorm.bias")
        self.layers: list[_Layer] = []
        for i in range(self.config.num_layers):
            lp = f"encoder.layer.{i}."
            qkv_w = np.concatenate([g(lp + f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1)
            qkv_b = np.concatenate([g(lp + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(_Layer(
                qkv_w=np.ascontiguousarray(qkv_w), qkv_b=qkv_b,
                attn_out_w=np.ascontiguousarray(g(lp + "attention.output.dense.weight").T),
                attn_out_b=g(lp + "attention.output.dense.bias"),
                ln1_g=g(lp + "attention.output.LayerNorm.weight"), ln1_b=g(lp + "attention.output.LayerNorm.bias"),
                inter_w=np.ascontiguousarray(g(lp + "intermediate.dense.weight").T),
                inter_b=g(lp + "intermediate.dense.bias"),
                out_w=np.ascontiguousarray(g(lp + "output.dense.weight").T), out_b=g(lp + "output.dense.bias"),
                ln2_g=g(lp + "output.LayerNorm.weight"), ln2_b=g(lp + "output.LayerNorm.bias"),
            ))

    @property
    def dimensions(self) -> int:
        return self.config.hidden_size

    def hidden_states(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> F32:
        """Last hidden states (batch, seq, hidden) for padded token ids and their attention mask."""
        c = self.config
        bsz, seq = ids.shape
        if seq > c.max_position:
            raise ValueError(f"sequence of {seq} tokens is longer than the model's {c.max_position} positions")
        eps = c.layer_norm_eps
        x = self.word[ids] + self.pos[:seq][None, :, :] + self.type0
        x = _layer_norm(x, self.emb_ln_g, self.emb_ln_b, eps)
        h, nh = c.hidden_size, c.num_heads
        hd = h // nh
        scale = np.float32(1.0 / math.sqrt(hd))
        bias = np.where(mask[:, None, None, :] > 0, np.float32(0.0), np.float32(-1e9)).astype(np.float32)
        for layer in self.layers:
            x2 = x.reshape(bsz * seq, h)
            qkv = x2 @ layer.qkv_w + layer.qkv_b  # (b*s, 3h): one 2-D GEMM per projection
            qkv = qkv.reshape(bsz, seq, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # (3, b, nh, s, hd)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(bsz * seq, h)
            x2 = _layer_norm(ctx @ layer.attn_out_w + layer.attn_out_b + x2, layer.ln1_g, layer.ln1_b, eps)
            inter = _gelu(x2 @ layer.inter_w + layer.inter_b)
            x2 = _layer_norm(inter @ layer.out_w + layer.out_b + x2, layer.ln2_g, layer.ln2_b, eps)
            x = x2.reshape(bsz, seq, h)
        return x.astype(np.float32, copy=False)

    def sentence_vectors(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> F32:
        """Mean-pooled (over real tokens) and L2-normalised sentence vectors (batch, hidden)."""
        with one_blas_thread():
            hs = self.hidden_states(ids, mask)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hs * m).sum(axis=1) / np.maximum(m.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
