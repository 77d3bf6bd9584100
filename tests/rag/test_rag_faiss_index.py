"""The faiss HNSW graph behind VectorIndex: deletions, narrow filters, saved files of another format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from llmspell.rag.index import AnnConfig, VectorIndex


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_deleted_labels_never_come_back_from_the_graph(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = unit(rng, 500, 16)
    idx = VectorIndex(16, AnnConfig(backend="hnsw"))
    idx.add(list(range(1, 501)), x, "global", None)
    assert idx.graph is not None
    gone = list(range(1, 501, 2))
    assert idx.remove(gone) == 250
    for q in x[:20]:  # each query is a deleted vector itself: the graph would rank it first
        hits = idx.search(q, 10, None)
        assert len(hits) == 10 and not {lab for lab, _ in hits} & set(gone)
    path = tmp_path / "g.hnsw"
    idx.save_graph(path, generation=3)  # rebuilt without the deleted labels before saving
    fresh = VectorIndex(16, AnnConfig(backend="exact"))
    fresh.add(list(range(2, 501, 2)), x[1::2], "global", None)
    assert fresh.load_graph(path, generation=3)
    assert {lab for lab, _ in fresh.search(x[1], 1, None)} == {2}


def test_a_filter_narrower_than_k_falls_back_to_exact() -> None:
    rng = np.random.default_rng(2)
    idx = VectorIndex(16, AnnConfig(backend="hnsw", ann_threshold=10))
    idx.add(list(range(1, 301)), unit(rng, 300, 16), "global", None)
    allowed = np.zeros(300, dtype=bool)
    allowed[[5, 77, 200]] = True
    hits = idx.search(unit(rng, 1, 16)[0], 10, allowed)
    assert sorted(lab for lab, _ in hits) == [6, 78, 201]


def test_graph_results_match_exact_scores() -> None:
    rng = np.random.default_rng(3)
    idx = VectorIndex(16, AnnConfig(backend="hnsw"))
    idx.add(list(range(1, 201)), unit(rng, 200, 16), "global", None)
    q = unit(rng, 1, 16)[0]
    graph = idx.search(q, 5, None)
    exact = idx._exact(q, 5, None)
    assert [lab for lab, _ in graph] == [lab for lab, _ in exact]
    assert np.allclose([s for _, s in graph], [s for _, s in exact], atol=1e-5)  # cosine, best first


def test_a_graph_file_of_another_format_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = unit(rng, 50, 8)
    idx = VectorIndex(8, AnnConfig(backend="hnsw"))
    idx.add(list(range(1, 51)), x, "global", None)
    path = tmp_path / "g.hnsw"
    idx.save_graph(path, generation=1)
    side = path.with_suffix(".hnsw.json")
    meta = json.loads(side.read_text())
    meta.pop("format")  # as written by the hnswlib version
    side.write_text(json.dumps(meta))
    fresh = VectorIndex(8, AnnConfig(backend="exact"))
    fresh.add(list(range(1, 51)), x, "global", None)
    assert not fresh.load_graph(path, generation=1)


def test_saving_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """Links planted under the names a save uses (the old fixed temp name, the sidecar, the graph) are replaced,
    never written through: the files they point at keep their bytes."""
    rng = np.random.default_rng(2)
    idx = VectorIndex(8, AnnConfig(backend="hnsw"))
    idx.add(list(range(1, 101)), unit(rng, 100, 8), "global", None)
    victims = {name: tmp_path / f"victim-{i}" for i, name in enumerate(("g.hnsw.tmp", "g.hnsw.json", "g.hnsw"))}
    folder = tmp_path / "index"
    folder.mkdir()
    for name, victim in victims.items():
        victim.write_text("# the user's file\n")
        (folder / name).symlink_to(victim)
    idx.save_graph(folder / "g.hnsw", generation=1)
    assert all(v.read_text() == "# the user's file\n" for v in victims.values())
    assert not (folder / "g.hnsw").is_symlink() and not (folder / "g.hnsw.json").is_symlink()
    fresh = VectorIndex(8, AnnConfig(backend="exact"))
    fresh.add(list(range(1, 101)), unit(np.random.default_rng(2), 100, 8), "global", None)
    assert fresh.load_graph(folder / "g.hnsw", generation=1)
