"""`NoteEmbedder`: the local loop and Spark's predict_batch_udf give the same vectors; shards feed `index build`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from notellm.data import schema as S
from notellm.data.store import frame_to_notes, load_notes
from notellm.inference.note_embedder import NoteEmbedder
from notellm.retrieval.encode import encode_notes
from notellm.retrieval.vector_shards import notes_from_json, read_vectors, write_vector_shard
from notellm.retrieval.vectors import NoteVectors
from notellm.serve.build import index_from_vectors


@pytest.fixture(scope="module")
def model_dir(tiny_backbone_dir, tmp_path_factory):
    from notellm.model.notellm import NoteLLM, NoteLLMConfig

    model = NoteLLM.from_backbone(NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16))
    return model.save_pretrained(tmp_path_factory.mktemp("embedder") / "model")


@pytest.fixture()
def data_dir(tmp_path):
    notes = pd.DataFrame({
        S.NOTE_ID: [f"n{i}" for i in range(7)],
        S.TITLE: ["IPA hops", "Stout", "Quantum gates", "Espresso", "", "Lager yeast", "Qubits"],
        S.CONTENT: ["bitter " * i for i in range(7)],
        S.HASHTAGS: [["beer"], [], ["qc", "gates"], ["coffee"], [], ["beer", "yeast"], ["qc"]],
        S.CATEGORY: ["beer", "beer", "qc", "coffee", "", "beer", "qc"],
    })
    notes.to_parquet(tmp_path / S.NOTES_FILE, index=False)
    return tmp_path


def test_json_codec_reads_notes_like_the_data_folder(data_dir):
    notes = frame_to_notes(load_notes(data_dir))
    rows = pd.read_parquet(data_dir / S.NOTES_FILE).to_json(orient="records", lines=True).splitlines()
    assert notes_from_json(rows) == notes


def test_embedder_pickles_without_its_model(model_dir, data_dir):
    import pickle

    embedder = NoteEmbedder(str(model_dir), precision="fp32")
    notes = frame_to_notes(load_notes(data_dir))
    first = embedder(notes[:2])
    clone = pickle.loads(pickle.dumps(embedder))
    assert clone._encoder is None and len(pickle.dumps(embedder)) < 1000
    np.testing.assert_allclose(clone(notes[:2]), first, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


def test_shards_round_trip_and_bad_shards(tmp_path):
    vectors = NoteVectors(["a", "b", "c"], np.arange(12, dtype=np.float32).reshape(3, 4))
    write_vector_shard(vectors.subset(["a", "b"]), tmp_path / "v" / "part-0.parquet")
    write_vector_shard(vectors.subset(["c"]), tmp_path / "v" / "part-1.parquet")
    back = read_vectors(tmp_path / "v")
    assert back.ids == ["a", "b", "c"] and np.array_equal(back.matrix, vectors.matrix)
    pd.DataFrame({"note_id": ["x"], "vec": [[1.0]]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="no column"):
        read_vectors(tmp_path / "bad.parquet")
    pd.DataFrame({"note_id": ["x", "y"], "embedding": [[1.0], [1.0, 2.0]]}).to_parquet(tmp_path / "rag.parquet")
    with pytest.raises(ValueError, match="same size"):
        read_vectors(tmp_path / "rag.parquet")
    with pytest.raises(FileNotFoundError):
        read_vectors(tmp_path / "nothing")


@pytest.mark.spark
def test_spark_embedding_matches_local_and_builds_an_index(spark, model_dir, data_dir, tmp_path):
    """Same vectors from Spark local[2] (3 shards, batches of 2) as from the local loop; index build reads them."""
    from notellm.inference.embed_spark import SparkEmbedConfig, embed_with_spark
    from notellm.serve.store import LocalNoteIndex

    notes = frame_to_notes(load_notes(data_dir))
    local = encode_notes(NoteEmbedder(str(model_dir), precision="fp32"), notes, progress=False)
    count = embed_with_spark(data_dir / S.NOTES_FILE, NoteEmbedder(str(model_dir)), tmp_path / "shards",
                             SparkEmbedConfig(batch_size=2, shards=3, precision="fp32"))
    assert count == len(notes)
    remote = read_vectors(tmp_path / "shards")
    assert sorted(remote.ids) == sorted(local.ids)
    np.testing.assert_allclose(remote.subset(local.ids).matrix, local.matrix, atol=1e-5)
    index = index_from_vectors(notes, tmp_path / "shards", tmp_path / "index")
    opened = LocalNoteIndex.open(index)
    try:
        assert opened.dim == 16 and len(opened) == len(notes)
    finally:
        opened.close()


def test_cli_embed_local_shards_then_index_build(model_dir, data_dir, tmp_path):
    from notellm.cli import build_app

    app = build_app()
    runner = CliRunner()
    result = runner.invoke(app, ["embed", "--data", str(data_dir), "--model", str(model_dir),
                                 "--out", str(tmp_path / "vecs")])
    assert result.exit_code == 0, result.output
    assert len(read_vectors(tmp_path / "vecs")) == 7
    result = runner.invoke(app, ["index", "build", "--model", str(model_dir), "--data", str(data_dir),
                                 "--out", str(tmp_path / "idx"), "--vectors", str(tmp_path / "vecs")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["embed", "--data", str(data_dir), "--model", str(model_dir),
                                 "--out", str(tmp_path / "v.npz"), "--engine", "spark"])
    assert result.exit_code != 0 and "Parquet shards" in result.output
