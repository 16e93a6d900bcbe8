"""Classification: train on Training, evaluate on Test, metrics, sweep, export parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from fruits_kedro.pipelines.classification import nodes
from fruits_kedro.pipelines.classification.nodes import (
    INPUTS,
    accuracy_vs_k,
    confusion_matrix,
    evaluate_classifier,
    head_inputs,
    metrics_from_confusion,
    select_head,
    train_classifier,
    with_inputs_vector,
)
from fruits_kedro.pipelines.export.nodes import fold_head
from fruits_kedro.pipelines.reduction.nodes import fit_pca, project
from fruits_kedro.pipelines.stages import k_of, labels_of

CLASSES, DIMS = 3, 16

PARAMS = {
    "train_split": "Training",
    "test_split": "Test",
    "classifier": "logistic_regression",
    "logistic_regression": {
        "reg_param": 0.0,
        "elastic_net_param": 0.0,
        "max_iter": 100,
        "tol": 1e-6,
    },
    "mlp": {"hidden_layers": [8], "max_iter": 200, "block_size": 32, "seed": 1},
    "sweep_k": [1, 2, 50],
    "sweep_parallelism": 2,
}


PCA_HEAD = {"features": "pca", "transform": "none", "reg_param": 0.0}


def as_inputs(features):
    """The principal components as the head's inputs."""
    return features.withColumnRenamed("pca", INPUTS)


def train(features, saved, params, head=PCA_HEAD):
    return train_classifier(as_inputs(features), saved, params, head)


def evaluate(features, model, variance, params, head=PCA_HEAD):
    return evaluate_classifier(as_inputs(features), model, variance, params, head)


def cluster_rows(per_class: int, split: str, seed: int, spread: float = 0.3) -> list[tuple]:
    """Gaussian clusters, one per class, in DIMS dimensions."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=3.0, size=(CLASSES, DIMS))
    rows = []
    for c in range(CLASSES):
        for i in range(per_class):
            vector = centres[c] + rng.normal(scale=spread, size=DIMS)
            rows.append((f"{split}{c}-{i}", f"/x/{split}/C{c}/{i}.jpg", f"C{c}", split, vector))
    return [(*row[:4], [float(v) for v in row[4]], None) for row in rows]


@pytest.fixture(scope="module")
def embeddings(spark):
    rows = cluster_rows(20, "Training", 1) + cluster_rows(10, "Test", 2)
    return spark.createDataFrame(
        rows,
        "image_id string, path string, label string, split string, features array<float>,"
        " reason string",
    )


@pytest.fixture(scope="module")
def reduced(embeddings):
    pca_model, variance = fit_pca(embeddings, None, None, {"k": 6})
    return pca_model, variance, project(embeddings, pca_model).cache()


def test_k_comes_from_the_model(reduced):
    _, _, features = reduced
    assert k_of(train(features, None, PARAMS)) == 6


def refuse_to_fit(*_args, **_kwargs):
    raise AssertionError("the classifier was fitted")


def test_without_retrain_the_saved_classifier_is_kept(reduced, monkeypatch):
    _, variance, features = reduced
    saved = train(features, None, PARAMS)
    monkeypatch.setattr(nodes, "fit_classifier", refuse_to_fit)

    kept = train(features, saved, {**PARAMS, "retrain": False})

    assert kept is saved
    metrics, _, _ = evaluate(features, kept, variance, PARAMS)
    assert metrics["accuracy"] == 1.0
    with pytest.raises(AssertionError, match="fitted"):
        train(features, saved, PARAMS)  # retrain is the default


def test_without_retrain_a_classifier_is_trained_when_none_is_saved(reduced):
    _, _, features = reduced

    model = train(features, None, {**PARAMS, "retrain": False})

    assert k_of(model) == 6


def test_a_kept_classifier_must_take_the_pcas_components(reduced):
    _, _, features = reduced
    saved = train(features, None, PARAMS)
    fewer = features.withColumn("pca", F.slice("pca", 1, 4))

    with pytest.raises(
        ValueError, match=r"classification\.retrain.* 6 inputs.* 4:.*reduction\.refit"
    ):
        train(fewer, saved, {**PARAMS, "retrain": False})
    assert k_of(train(fewer, saved, PARAMS)) == 4  # retrained: no mismatch


def test_metrics_of_a_known_confusion_matrix():
    labels = ["a", "b", "c"]
    confusion = pd.DataFrame([[8, 2, 0], [1, 9, 0], [0, 0, 0]], index=labels, columns=labels)

    metrics = metrics_from_confusion(confusion)

    assert metrics["accuracy"] == pytest.approx(17 / 20)
    assert metrics["per_class"]["a"] == pytest.approx(
        {"precision": 8 / 9, "recall": 0.8, "f1": 2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), "support": 10}
    )
    assert metrics["per_class"]["b"]["precision"] == pytest.approx(9 / 11)
    assert "c" not in metrics["per_class"]  # never true, never predicted
    f1_a, f1_b = metrics["per_class"]["a"]["f1"], metrics["per_class"]["b"]["f1"]
    assert metrics["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)


@pytest.mark.parametrize("classifier", ["logistic_regression", "mlp"])
def test_separable_classes_are_learnt_and_exported_exactly(reduced, embeddings, classifier):
    pca_model, variance, features = reduced
    params = {**PARAMS, "classifier": classifier}

    model = train(features, None, params)
    metrics, confusion, predictions = evaluate(features, model, variance, params)

    assert metrics["accuracy"] == 1.0
    assert metrics["macro_f1"] == 1.0
    assert (metrics["k"], metrics["train_images"], metrics["test_images"]) == (6, 60, 30)
    assert metrics["explained_variance"] == pytest.approx(variance["total_explained_variance"])
    assert metrics["classes"] == CLASSES
    assert list(confusion.index) == ["C0", "C1", "C2"]
    assert np.diag(confusion.to_numpy()).tolist() == [10, 10, 10]
    assert predictions.count() == 30
    assert predictions.filter("correct").count() == 30

    # the folded head gives Spark's own probabilities, without Spark
    head = fold_head(pca_model, model, PCA_HEAD)
    test = embeddings.filter("split = 'Test'").orderBy("image_id")
    spark_probabilities = np.array(
        [
            row["probability"].toArray()
            for row in model.transform(with_inputs_vector(as_inputs(project(test, pca_model))))
            .orderBy("image_id")
            .collect()
        ]
    )
    features_np = np.array([row["features"] for row in test.collect()], dtype=np.float32)
    np.testing.assert_allclose(head(features_np), spark_probabilities, atol=1e-4)
    assert head.layers[0][0].shape[0] == features_np.shape[1]  # the features, not the components
    assert labels_of(model) == ["C0", "C1", "C2"]


def test_a_test_label_never_seen_in_training_counts_as_a_mistake(spark, reduced):
    _, variance, features = reduced
    relabelled = features.selectExpr(
        "image_id",
        "path",
        "CASE WHEN split = 'Test' AND label = 'C2' THEN 'Unknown' ELSE label END AS label",
        "split",
        "pca",
    )
    model = train(relabelled.filter("label != 'Unknown'"), None, PARAMS)

    metrics, confusion, predictions = evaluate(relabelled, model, variance, PARAMS)

    assert metrics["test_images"] == 30
    assert predictions.count() == 30  # nothing dropped
    assert metrics["accuracy"] == pytest.approx(20 / 30)
    assert confusion.loc["Unknown"].sum() == 10
    assert metrics["per_class"]["Unknown"]["recall"] == 0.0


def test_missing_split_is_named_with_its_parameter(reduced):
    _, _, features = reduced
    with pytest.raises(
        ValueError, match=r"no images in split 'Train'.*classification\.train_split"
    ):
        train(features, None, {**PARAMS, "train_split": "Train"})


def test_unknown_classifier_names_the_parameter(reduced):
    _, _, features = reduced
    with pytest.raises(ValueError, match=r"classification\.classifier.*'forest'"):
        train(features, None, {**PARAMS, "classifier": "forest"})


def test_accuracy_against_k_reuses_the_models_point(reduced):
    _, variance, features = reduced
    model = train(features, None, PARAMS)
    metrics = {"k": 99, "accuracy": 1.0}  # k comes from the model, not from the metrics

    sweep = accuracy_vs_k(features, model, variance, metrics, PARAMS)

    assert [p["k"] for p in sweep["points"]] == [1, 2, 6]  # 50 > k is skipped
    assert sweep["chosen_k"] == 6
    assert sweep["points"][-1]["fit_s"] is None
    cumulative = variance["cumulative_explained_variance"]
    assert [p["explained_variance"] for p in sweep["points"]] == [
        cumulative[0],
        cumulative[1],
        cumulative[5],
    ]
    assert all(0.0 <= p["accuracy"] <= 1.0 for p in sweep["points"])
    assert sweep["points"][1]["accuracy"] >= 0.9  # two components separate three clusters


def test_each_sweep_point_is_the_classifier_refitted_on_k_components(reduced):
    """The shared scaling and slicing give the accuracy of a plain refit at that k."""
    _, variance, features = reduced
    model = train(features, None, PARAMS)
    sweep = accuracy_vs_k(features, model, variance, {"accuracy": 1.0}, PARAMS)

    for point in sweep["points"][:-1]:
        head = features.withColumn("pca", F.slice("pca", 1, point["k"]))
        refit = train(head, None, PARAMS)
        test = with_inputs_vector(as_inputs(head.filter("split = 'Test'")))
        predicted = refit.transform(test).filter("predicted_label = label").count()
        assert point["accuracy"] == pytest.approx(predicted / test.count())


def test_confusion_matrix_is_square_over_every_label(spark):
    predictions = spark.createDataFrame(
        [("a", "a"), ("a", "b"), ("b", "b"), ("c", "a")], "label string, predicted_label string"
    )
    table = confusion_matrix(predictions)
    assert list(table.index) == list(table.columns) == ["a", "b", "c"]
    assert table.to_numpy().tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


SQRT_HEAD = {"features": "embeddings", "transform": "sqrt", "reg_param": 1e-3}


def positive(embeddings):
    """The clusters shifted to non-negative features, like pooled ReLU activations."""
    return embeddings.withColumn("features", F.transform("features", lambda x: x + 12.0))


def test_the_head_reads_the_square_root_of_the_features(reduced, embeddings):
    _, _, features = reduced
    shifted = positive(embeddings)

    inputs = head_inputs(features, shifted, SQRT_HEAD).orderBy("image_id").first()

    original = shifted.orderBy("image_id").first()["features"]
    np.testing.assert_allclose(inputs[INPUTS], np.sqrt(original), rtol=1e-6)
    assert head_inputs(features, shifted, PCA_HEAD).first()[INPUTS] is not None


def test_the_head_is_chosen_on_validation_and_reported(reduced, embeddings):
    _, _, features = reduced
    shifted = positive(embeddings)
    params = {
        **PARAMS,
        "head": PCA_HEAD,
        "select": {
            "validation_share": 0.3,
            "block": 1,
            "candidates": [
                {"features": "pca", "transform": "none", "reg_param": 0.0},
                {"features": "embeddings", "transform": "sqrt", "reg_param": 1e-3},
                {"features": "embeddings", "transform": "none", "reg_param": 1e6},  # too strong
            ],
        },
    }

    head = select_head(features, shifted, params)

    scores = [c["validation_accuracy"] for c in head["validation"]]
    assert len(scores) == 3 and scores[0] == scores[1] == 1.0 and scores[2] < 1.0
    best = min(
        head["validation"], key=lambda c: (-c["validation_accuracy"], c["validation_log_loss"])
    )
    assert {k: head[k] for k in PCA_HEAD} == {k: best[k] for k in PCA_HEAD}  # then the log-loss
    assert head["validation"][2]["validation_log_loss"] > best["validation_log_loss"]
    kept = select_head(features, shifted, {**params, "retrain": False})
    assert kept == {**PCA_HEAD, "validation": []}  # the configured head, no fit


def test_a_sqrt_head_on_the_features_folds_exactly(reduced, embeddings):
    pca_model, variance, features = reduced
    shifted = positive(embeddings)
    inputs = head_inputs(features, shifted, SQRT_HEAD)
    model = train_classifier(inputs, None, PARAMS, SQRT_HEAD)
    metrics, _, _ = evaluate_classifier(inputs, model, variance, PARAMS, SQRT_HEAD)
    assert metrics["accuracy"] == 1.0
    assert (metrics["head"], metrics["inputs"], metrics["k"]) == (SQRT_HEAD, DIMS, 6)

    head = fold_head(pca_model, model, SQRT_HEAD)

    test = with_inputs_vector(inputs.filter("split = 'Test'")).orderBy("image_id")
    spark_probabilities = np.array(
        [r["probability"].toArray() for r in model.transform(test).collect()]
    )
    raw = np.array(
        [r["features"] for r in shifted.filter("split = 'Test'").orderBy("image_id").collect()]
    )
    assert head.transform == "sqrt" and head.layers[0][0].shape == (DIMS, CLASSES)
    np.testing.assert_allclose(head(raw), spark_probabilities, atol=1e-4)


def test_a_head_that_is_not_known_names_the_parameter(reduced, embeddings):
    _, _, features = reduced
    params = {**PARAMS, "head": {"features": "pixels", "transform": "none", "reg_param": 0.0}}
    with pytest.raises(ValueError, match=r"classification\.head.*'pixels'"):
        select_head(features, embeddings, params)
