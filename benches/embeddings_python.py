#!/usr/bin/env python3
"""Python reference for the embeddings benchmark (benches/embeddings_compare.sh).

What a Python engineer would write with the same model: Hugging Face `tokenizers`
(tokenizer.json, truncation, padding with its pad id), `onnxruntime` with a fixed
number of intra-op threads, mean pooling over the attention mask and L2 normalisation
in numpy, batches of texts in the given order (or sorted by length with --sort).

  embeddings_python.py make-texts N OUT          # N synthetic Vietnamese product texts
  embeddings_python.py run --model-dir D --texts F [--batch-size 32] [--threads 2]
                         [--max-length 256] [--prefix "passage: "] [--sort]
                         [--repeat 3] [--vectors-out F]

`run` prints one JSON line: texts, seconds (best of --repeat), texts_per_second.
Runs in the models venv (models/.venv/bin/python), which has numpy, onnxruntime and
tokenizers.
"""

import argparse
import json
import random
import sys
import time


def make_texts(n, out):
    """Deterministic synthetic product descriptions (name. description), 10-90 words."""
    rng = random.Random(20250114)
    kinds = ["Sữa rửa mặt", "Kem dưỡng ẩm", "Serum vitamin C", "Kem chống nắng", "Nước tẩy trang",
             "Toner cân bằng", "Mặt nạ ngủ", "Son môi lì", "Phấn nước cushion", "Dầu gội thảo dược",
             "Sữa tắm hương hoa", "Tinh chất phục hồi", "Xịt khoáng", "Kem mắt", "Tẩy tế bào chết"]
    brands = ["CeraVe", "La Roche-Posay", "Innisfree", "Laneige", "Bioderma", "Cocoon", "Some By Mi",
              "Vichy", "Maybelline", "Klairs", "Hada Labo", "Senka", "Anessa", "Thorakao"]
    skins = ["da dầu", "da khô", "da nhạy cảm", "da hỗn hợp", "da mụn", "mọi loại da", "da lão hóa"]
    benefits = ["làm sạch sâu", "cấp ẩm suốt 24 giờ", "làm dịu da", "giảm mụn", "se khít lỗ chân lông",
                "làm sáng da", "mờ thâm nám", "chống lão hóa", "bảo vệ da khỏi tia UV", "phục hồi hàng rào da",
                "kiềm dầu", "giảm nếp nhăn", "dưỡng môi mềm mịn", "lâu trôi"]
    ingredients = ["niacinamide", "hyaluronic acid", "ceramide", "rau má", "trà xanh", "vitamin E",
                   "BHA", "retinol", "bí đao", "nghệ", "panthenol", "collagen", "lô hội"]
    extras = ["Không chứa cồn và hương liệu.", "Kết cấu mỏng nhẹ, thấm nhanh, không gây bết dính.",
              "Phù hợp dùng hằng ngày, sáng và tối.", "Đã được kiểm nghiệm da liễu.",
              "Dung tích 200ml, sản xuất tại Hàn Quốc.", "Hàng chính hãng, có tem phụ tiếng Việt.",
              "Thoa đều lên da sau bước làm sạch, massage nhẹ nhàng.", "Bảo quản nơi khô ráo, tránh ánh nắng trực tiếp.",
              "Giao hàng toàn quốc, đổi trả trong 7 ngày."]
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            name = f"{rng.choice(kinds)} {rng.choice(brands)} {rng.choice(['50ml', '100ml', '150ml', '200ml', '30g'])}"
            sentences = [f"{rng.choice(kinds)} giúp {rng.choice(benefits)} và {rng.choice(benefits)} cho {rng.choice(skins)}."]
            for _ in range(rng.randint(0, 5)):
                sentences.append(
                    rng.choice([
                        f"Thành phần {rng.choice(ingredients)} và {rng.choice(ingredients)} giúp {rng.choice(benefits)}.",
                        rng.choice(extras),
                        f"Sản phẩm dành cho {rng.choice(skins)}, {rng.choice(benefits)} hiệu quả sau {rng.randint(2, 8)} tuần.",
                    ])
                )
            text = f"{name}. {' '.join(sentences)}".replace("\n", " ")
            f.write(text + "\n")


def run(args):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    with open(args.texts, encoding="utf-8") as f:
        texts = [args.prefix + line.rstrip("\n") for line in f]
    tok = Tokenizer.from_file(f"{args.model_dir}/tokenizer.json")
    tok.enable_truncation(args.max_length)
    pad = tok.padding  # from tokenizer.json
    tok.enable_padding(pad_id=pad["pad_id"], pad_token=pad["pad_token"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(f"{args.model_dir}/model.onnx", opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}

    # Unpadded lengths for --sort (measured inside the timing, as the Rust side does).
    tok_lengths = Tokenizer.from_file(f"{args.model_dir}/tokenizer.json")
    tok_lengths.enable_truncation(args.max_length)
    tok_lengths.no_padding()

    def embed_ordered():
        order = list(range(len(texts)))
        if args.sort:
            lengths = [len(e.ids) for e in tok_lengths.encode_batch(texts)]
            order.sort(key=lambda i: lengths[i])
        rows = [None] * len(texts)
        for start in range(0, len(order), args.batch_size):
            idx = order[start : start + args.batch_size]
            enc = tok.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
            (hidden,) = sess.run(["last_hidden_state"], feed)
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for k, i in enumerate(idx):
                rows[i] = pooled[k]
        return np.stack(rows)

    # Warm-up: one text (first-run allocations), not timed.
    first = tok.encode(texts[0])
    warm = {
        "input_ids": np.array([first.ids], dtype=np.int64),
        "attention_mask": np.array([first.attention_mask], dtype=np.int64),
        "token_type_ids": np.zeros((1, len(first.ids)), dtype=np.int64),
    }
    sess.run(["last_hidden_state"], {k: v for k, v in warm.items() if k in names})
    best = best_cpu = None
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        vectors = embed_ordered()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best = dt if best is None else min(best, dt)
        best_cpu = dc if best_cpu is None else min(best_cpu, dc)
    if args.vectors_out:
        vectors.astype("<f4").tofile(args.vectors_out)
    print(json.dumps({"impl": "python", "texts": len(texts), "seconds": round(best, 3),
                      "texts_per_second": round(len(texts) / best, 1), "cpu_seconds": round(best_cpu, 2),
                      "texts_per_cpu_second": round(len(texts) / best_cpu, 2), "sorted": args.sort}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-texts")
    mk.add_argument("n", type=int)
    mk.add_argument("out")
    r = sub.add_parser("run")
    r.add_argument("--model-dir", required=True)
    r.add_argument("--texts", required=True)
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--max-length", type=int, default=256)
    r.add_argument("--prefix", default="passage: ")
    r.add_argument("--sort", action="store_true")
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--vectors-out")
    args = ap.parse_args()
    if args.cmd == "make-texts":
        make_texts(args.n, args.out)
    else:
        run(args)


if __name__ == "__main__":
    sys.exit(main())
