"""FLOPs of any Keras model (mnistbench/measures/model_flops.py) against hand counts per layer type, against
flops.py's counts of the shipped models, and against XLA's count of Keras's compiled steps.

Keras runs in subprocesses on JAX's CPU only: building a model in the test process would start
its framework before test_train sizes the thread pools (Keras picks its backend once a process).
"""

import json

import pytest
from conftest import run_on_jax

from mnistbench.measures import flops

# Each layer alone after its Input, for one image. Row: forward, weight gradient, input gradient,
# batch statistics. A multiply-add (MA) is 2 FLOPs, a bias add 1.
HAND = {
    # 2x5 -> 2x3: 2*5*3 = 30 MA, 6 bias adds
    "Dense": ("(2, 5)", "L.Dense(3)", (66, 66, 60, 0)),
    # "ab,bcd->acd" on 5 -> 3x4: a=1 b=5 c=3 d=4, 60 MA, no bias
    "EinsumDense": ("(5,)", "L.EinsumDense('ab,bcd->acd', output_shape=(3, 4))", (120, 120, 120, 0)),
    # 5x1 -> 5x2, padding 1 each side: 5*3 - 2 = 13 taps land on the input; 13*1*2 = 26 MA, 10 bias
    "Conv1D": ("(5, 1)", "L.Conv1D(2, 3, padding='same')", (62, 62, 52, 0)),
    # 5x5x2 -> 3x3x4: 9 taps x 9 positions x 2 in x 4 out = 648 MA, 36 bias
    "Conv2D": ("(5, 5, 2)", "L.Conv2D(4, 3)", (1332, 1332, 1296, 0)),
    # stride 2, padding 1: outputs take 2, 3, 2 taps a dimension: 7*7 taps x (2/2 groups) x 4 out
    "Conv2D grouped": (
        "(5, 5, 2)",
        "L.Conv2D(4, 3, strides=2, padding='same', groups=2)",
        (428, 428, 392, 0),
    ),
    # 3x3x3x1 -> 2x2x2x2: (2 positions x 2 taps)^3 = 64 x 1 in x 2 out = 128 MA, 16 bias
    "Conv3D": ("(3, 3, 3, 1)", "L.Conv3D(2, 2)", (272, 272, 256, 0)),
    # 4x4x3 -> 2x2x6: 36 taps x 3 channels x 2 = 216 MA, 24 bias
    "DepthwiseConv2D": ("(4, 4, 3)", "L.DepthwiseConv2D(3, depth_multiplier=2)", (456, 456, 432, 0)),
    # 4x4x2 -> 2x2x4: depthwise 36 taps x 2 = 72 MA, pointwise 4 x 2 x 4 = 32 MA, 16 bias; the
    # weight gradient includes the pointwise input gradient (64), the input gradient is 2*72
    "SeparableConv2D": ("(4, 4, 2)", "L.SeparableConv2D(4, 3)", (224, 288, 144, 0)),
    # 2x2x1 -> 5x5x2: each input x 3 taps a dimension, (2*3)^2 = 36 x 2 out = 72 MA, 50 bias
    "Conv2DTranspose": ("(2, 2, 1)", "L.Conv2DTranspose(2, 3, strides=2)", (194, 194, 144, 0)),
    # 2x2x1 -> 4x4x2: 'same' crops one of the 6 taps a dimension: 25 x 2 = 50 MA, 32 bias
    "Conv2DTranspose same": ("(2, 2, 1)", "L.Conv2DTranspose(2, 3, 2, padding='same')", (132, 132, 100, 0)),
    # 12 elements: 2 (scale, shift), gamma 2 + beta 1, input gradient 9, statistics 4
    "BatchNormalization": ("(2, 2, 3)", "L.BatchNormalization()", (24, 36, 108, 48)),
    # 6 elements: 7, gamma 2 + beta 1, 9; RMS: 4, 2, 6
    "LayerNormalization": ("(2, 3)", "L.LayerNormalization()", (42, 18, 54, 0)),
    "LayerNormalization rms": ("(2, 3)", "L.LayerNormalization(rms_scaling=True)", (24, 12, 36, 0)),
    # 4x4x3 -> 2x2x3 = 12 outputs of 4-element windows: 3 comparisons; 3 adds and 1 division
    "MaxPooling2D": ("(4, 4, 3)", "L.MaxPooling2D(2)", (36, 0, 36, 0)),
    "AveragePooling2D": ("(4, 4, 3)", "L.AveragePooling2D(2)", (48, 0, 12, 0)),
    # 2x3x4 -> 4 outputs of 6-element windows
    "GlobalAveragePooling2D": ("(2, 3, 4)", "L.GlobalAveragePooling2D()", (24, 0, 4, 0)),
    "GlobalMaxPooling2D": ("(2, 3, 4)", "L.GlobalMaxPooling2D()", (20, 0, 20, 0)),
}

COUNTS = """
import json, sys
import keras
from keras import layers as L
from mnistbench import grid
from mnistbench.measures import model_flops
from mnistbench.training.models import build_model

hand = json.loads(sys.argv[1])


def row_values(row):
    return [row.class_name, row.forward, row.weight_gradient, row.input_gradient,
            row.batch_statistics, row.trains_weights, row.needs_input_gradient]


def counted(model):
    found = model_flops.count(model)
    return {"rows": [row_values(row) for row in found.rows], "forward": found.forward,
            "train": found.train, "unknown": list(found.unknown)}


class Scale(L.Layer):  # a custom layer with a weight
    def build(self, shape):
        self.factor = self.add_weight(shape=(), initializer="ones")

    def call(self, x):
        return x * self.factor


class Halve(L.Layer):  # a custom layer without weights: element-wise
    def call(self, x):
        return x / 2


class MyDense(L.Dense):  # a subclass of a known layer may compute anything
    pass


def chain(shape, *layers):
    inputs = x = keras.Input(shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


found = {name: counted(chain(eval(shape), eval(layer))) for name, (shape, layer, _) in hand.items()}
found["dense, dense"] = counted(chain((6,), L.Dense(4), L.Dense(2)))
found["frozen dense, dense"] = counted(chain((6,), L.Dense(4, trainable=False), L.Dense(2)))
inner = keras.Sequential([L.Dense(4), L.Dense(2)])
found["nested"] = counted(chain((6,), L.Dense(6), chain((6,), inner)))
found["custom with a weight"] = counted(chain((6,), Scale(), L.Dense(2)))
found["custom without weights"] = counted(chain((6,), Halve(), L.Dense(2)))
found["subclass of Dense"] = counted(chain((6,), MyDense(2)))
found["LSTM"] = counted(chain((3, 6), L.LSTM(2)))
for model in ("softmax", "mlp", "cnn"):
    found[model] = counted(build_model(grid.Run.of({"model": model, "hidden_units": 64})))
keras.config.set_dtype_policy("mixed_float16")
found["cnn mixed_float16"] = counted(build_model(grid.Run.of({"model": "cnn"})))
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def counts():
    return run_on_jax(COUNTS, json.dumps(HAND))


@pytest.mark.parametrize("case", HAND)
def test_each_layer_type_matches_its_hand_count(counts, case):
    (row,) = counts[case]["rows"][-1:]
    assert tuple(row[1:5]) == HAND[case][2], row
    assert row[6] is False  # the first layer's input is the data: no input gradient
    # trains its weights, if any: forward + statistics + weight gradient
    forward, weight_gradient, _, statistics = HAND[case][2]
    assert counts[case]["train"] == forward + statistics + (weight_gradient if row[5] else 0)


def test_a_layer_needs_its_input_gradient_only_above_trainable_weights(counts):
    # 6 -> 4 -> 2: 2*24 + 4 = 52, 2*8 + 2 = 18; training 52*2 and 18*2 + 16 (the second's input)
    assert counts["dense, dense"]["forward"] == 70
    assert counts["dense, dense"]["train"] == 104 + 36 + 16
    assert [row[6] for row in counts["dense, dense"]["rows"]] == [False, True]
    # frozen: the first layer only runs forward, and its output depends on no trainable weight
    assert counts["frozen dense, dense"]["train"] == 52 + 36


def test_nested_models_are_walked_into(counts):
    # 6 -> 6 (2*36 + 6 = 78) -> 4 (52) -> 2 (18); the nested layers need their input gradients
    nested = counts["nested"]
    assert nested["forward"] == 78 + 52 + 18
    assert nested["train"] == 2 * 78 + (2 * 52 + 48) + (2 * 18 + 16)
    assert nested["unknown"] == []


@pytest.mark.parametrize(
    ("case", "unknown"),
    [("custom with a weight", "Scale"), ("subclass of Dense", "MyDense"), ("LSTM", "LSTM")],
)
def test_a_layer_it_does_not_know_leaves_the_totals_empty_and_is_named(counts, case, unknown):
    assert counts[case]["forward"] is None and counts[case]["train"] is None
    assert counts[case]["unknown"] == [unknown]


def test_a_custom_layer_without_weights_is_element_wise(counts):
    assert counts["custom without weights"]["forward"] == 2 * 12 + 2
    assert counts["custom without weights"]["unknown"] == []


@pytest.mark.parametrize("model", ["softmax", "mlp", "cnn"])
def test_the_shipped_models_layers_with_weights_are_flops_pys(counts, model):
    """flops.py counts the layers with weights and leaves pooling out; this counts pooling too
    (the cnn's two max poolings: 13x13x32 and 5x5x64 outputs, 3 comparisons each, forward and
    input gradient)."""
    rows = counts[model]["rows"]
    weighted = [row for row in rows if row[0] in ("Dense", "Conv2D")]
    expected = flops.layer_counts(model, 64 if model == "mlp" else None)
    assert [row[1:4] for row in weighted] == [
        [c.flops, c.weight_gradient_flops, c.input_gradient_flops] for c in expected
    ]
    pooling = [row for row in rows if row[0] == "MaxPooling2D"]
    assert [row[1] for row in pooling] == ([3 * 13 * 13 * 32, 3 * 5 * 5 * 64] if model == "cnn" else [])
    assert {row[0] for row in rows} - {"Dense", "Conv2D", "MaxPooling2D"} <= {
        "Rescaling",
        "Flatten",
        "Reshape",
        "Dropout",
    }
    assert all(sum(row[1:5]) == 0 for row in rows if row not in weighted + pooling)
    hidden = 64 if model == "mlp" else None
    pooling_forward, pooling_train = sum(row[1] for row in pooling), sum(row[1] + row[3] for row in pooling)
    assert counts[model]["forward"] == flops.forward_flops(model, hidden) + pooling_forward
    assert counts[model]["train"] == flops.train_flops(model, hidden) + pooling_train


def test_counts_do_not_depend_on_the_dtype(counts):
    assert counts["cnn mixed_float16"] == counts["cnn"]


# XLA's count of Keras's compiled forward pass and train step (forward, loss, gradients, the
# optimizer's update), per image of a batch, on JAX's CPU: the shipped models (with their Adam)
# and one small model per layer type, the layer between a Dense on its channels (so its input
# gradient is needed) and a Dense(1) head, trained with SGD on a squared error.
XLA_BATCH = 32
SMALL = {
    "Dense": ("(32,)", "L.Dense(16)"),
    "EinsumDense": ("(8, 16)", "L.EinsumDense('abc,cd->abd', output_shape=(8, 12), bias_axes='d')"),
    "Conv1D": ("(16, 4)", "L.Conv1D(8, 3, strides=2, padding='same')"),
    "Conv2D": ("(10, 10, 4)", "L.Conv2D(8, 3, padding='same', groups=2)"),
    "Conv3D": ("(6, 6, 6, 2)", "L.Conv3D(4, 3, strides=2, padding='same')"),
    # depth_multiplier 2: with 1, XLA's CPU compiler turns the depthwise kernel's gradient into
    # an ungrouped convolution, channels times the multiply-adds (ours is then 0.60 of its count
    # of the train step, 0.999 of its count before optimization)
    "DepthwiseConv2D": ("(10, 10, 4)", "L.DepthwiseConv2D(3, depth_multiplier=2, padding='same')"),
    "SeparableConv2D": ("(10, 10, 4)", "L.SeparableConv2D(8, 3, depth_multiplier=2, padding='same')"),
    "Conv2DTranspose": ("(5, 5, 4)", "L.Conv2DTranspose(8, 3, strides=2, padding='same')"),
    "BatchNormalization": ("(8, 8, 8)", "L.BatchNormalization()"),
    "LayerNormalization": ("(8, 8, 8)", "L.LayerNormalization()"),
    "MaxPooling2D": ("(8, 8, 8)", "L.MaxPooling2D(2)"),
    "AveragePooling2D": ("(8, 8, 8)", "L.AveragePooling2D(3, strides=1, padding='same')"),
    "GlobalAveragePooling2D": ("(8, 8, 8)", "L.GlobalAveragePooling2D()"),
    "GlobalMaxPooling2D": ("(8, 8, 8)", "L.GlobalMaxPooling2D()"),
}

XLA = """
import json, sys
import jax
import keras
import numpy as np
from keras import layers as L
from mnistbench import grid
from mnistbench.measures import model_flops
from mnistbench.training.models import build_model, build_optimizer

batch, small = int(sys.argv[1]), json.loads(sys.argv[2])


def xla_flops(function, *arguments):
    costs = jax.jit(function).lower(*arguments).compile().cost_analysis()
    return (costs[0] if isinstance(costs, list) else costs)["flops"]


def measure(model, optimizer, loss, x, y):
    model.compile(optimizer=optimizer, loss=loss)
    model._symbolic_build(data_batch=(x[:1], y[:1]))
    state = [[v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables,
        model.optimizer.variables, model.metrics_variables)]
    forward = xla_flops(lambda t, n, x: model.stateless_call(t, n, x)[0], state[0], state[1], x)
    train = xla_flops(model.train_step, state, (x, y))
    ours = model_flops.count(model)
    return {"forward": [ours.forward, forward / batch], "train": [ours.train, train / batch]}


found = {}
for name in ("softmax", "mlp", "cnn"):
    run = grid.Run.of({"model": name, "hidden_units": 64})
    x, y = np.zeros((batch, 28, 28), np.uint8), np.zeros((batch,), np.uint8)
    found[name] = measure(build_model(run), build_optimizer(run), "sparse_categorical_crossentropy", x, y)
for name, (shape, layer) in small.items():
    inputs = keras.Input(eval(shape))
    x = L.Dense(inputs.shape[-1], use_bias=False)(inputs)
    model = keras.Model(inputs, L.Dense(1)(L.Flatten()(eval(layer)(x))))
    x, y = np.zeros((batch, *eval(shape)), np.float32), np.zeros((batch, 1), np.float32)
    found[name] = measure(model, keras.optimizers.SGD(), "mse", x, y)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def xla():
    return run_on_jax(XLA, str(XLA_BATCH), json.dumps(SMALL))


# XLA counts everything ours counts, and the element-wise work ours leaves out (activations and
# their gradients, the loss, the optimizer's update; for LayerNormalization and pooling, the
# gradients' broadcasts and selections), so ours is at most XLA's. Measured (JAX 0.10.2, Keras
# 3.15.1, batch 32, AMD EPYC), ours / XLA's: forward passes 1.000 but for softmax regression
# (0.907: the rescaling is as costly as its one layer), the mlp (0.984), the cnn (0.994) and
# LayerNormalization (0.913); train steps 0.97 to 0.999 but for softmax regression (0.867, Adam's
# update spread over 32 images), the mlp (0.913), LayerNormalization and max pooling (0.823),
# average pooling (0.871) and global max pooling (0.894).
LEAST_SHARE_OF_XLA = 0.8


@pytest.mark.parametrize("model", ["softmax", "mlp", "cnn", *SMALL])
@pytest.mark.parametrize("which", ["forward", "train"])
def test_counts_are_xlas_less_element_wise_work(xla, model, which):
    ours, xlas = xla[model][which]
    assert LEAST_SHARE_OF_XLA * xlas <= ours <= xlas, f"{model} {which}: ours {ours:,}, XLA's {xlas:,.0f}"
