"""FLOPs per image (mnistbench/flops.py) against hand counts, and against the layers of the
models that mnistbench.models really builds."""

import json
import subprocess
import sys

import pytest

from mnistbench import flops

# Hand counts, forward pass of one 28x28 image; a multiply-add is 2 FLOPs, a bias add 1.
# softmax: Dense 784 -> 10.
SOFTMAX = 2 * 784 * 10 + 10  # 15,690
# mlp 784-64-10: Dense 784 -> 64, Dense 64 -> 10.
MLP_64 = 2 * (784 * 64 + 64 * 10) + (64 + 10)  # 101,706
# cnn: Conv2D 3x3x1 -> 32 on 28x28 gives 26x26x32, pooled to 13x13x32; Conv2D 3x3x32 -> 64 gives
# 11x11x64, pooled to 5x5x64 = 1600; Dense 1600 -> 10.
CNN_MULTIPLY_ADDS = 26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 10  # 2,440,960: "about 2.4 M"
CNN = 2 * CNN_MULTIPLY_ADDS + (26 * 26 * 32 + 11 * 11 * 64 + 10)  # 4,911,306


@pytest.mark.parametrize(
    ("model", "hidden_units", "forward"),
    [
        ("softmax", None, SOFTMAX),
        ("mlp", 64, MLP_64),
        ("mlp", 8, 2 * (784 * 8 + 8 * 10) + 18),
        ("cnn", None, CNN),
    ],
)
def test_forward_and_training_flops_match_hand_counts(model, hidden_units, forward):
    assert flops.forward_flops(model, hidden_units) == forward
    # Backward is twice the forward: training an image costs 3x its forward pass.
    assert flops.train_flops(model, hidden_units) == 3 * forward


def test_the_cnn_is_the_issues_2_4_million_multiply_adds_and_15_mflop_per_trained_image():
    counts = flops.layer_counts("cnn")
    assert sum(count.multiply_adds for count in counts) == CNN_MULTIPLY_ADDS
    assert 14.5e6 < flops.train_flops("cnn") < 15e6


@pytest.mark.parametrize(("model", "hidden_units"), [("mlp", None), ("mlp", 0), ("resnet", None)])
def test_an_unknown_model_or_a_missing_width_is_refused(model, hidden_units):
    with pytest.raises(ValueError, match="model"):
        flops.forward_flops(model, hidden_units)


# Counts of every Dense and Conv2D layer of the models mnistbench.models builds, taken from the
# built layers in a process of its own (Keras's framework must start in each test process as a
# training process starts it: test_train sizes its thread pools).
BUILT_COUNTS = """
import json, sys
from mnistbench import grid
from mnistbench.models import build_model
counts = []
for model in ("softmax", "mlp", "cnn"):
    built = build_model(grid.Run.of({"model": model, "hidden_units": 48}))
    for layer in built.layers:
        if type(layer).__name__ not in ("Dense", "Conv2D"):
            continue
        output = tuple(layer.output.shape[1:])
        positions = output[0] * output[1] if len(output) == 3 else 1
        kernel_size = 1
        for size in layer.kernel.shape:  # Dense: (inputs, units); Conv2D: (height, width, in, out)
            kernel_size *= size
        counts.append([model, type(layer).__name__, list(output), positions * kernel_size,
                       positions * layer.bias.shape[0]])
print(json.dumps(counts))
"""


def test_counts_match_the_layers_of_the_built_keras_model():
    """A change to the models that the hand counts miss fails here."""
    done = subprocess.run([sys.executable, "-c", BUILT_COUNTS], capture_output=True, text=True, check=True)
    built = json.loads(done.stdout.strip().splitlines()[-1])
    for model in ("softmax", "mlp", "cnn"):
        layers = [row[1:] for row in built if row[0] == model]
        counts = flops.layer_counts(model, 48 if model == "mlp" else None)
        expected = [[c.layer, list(c.output_shape), c.multiply_adds, c.bias_adds] for c in counts]
        assert layers == expected, model
