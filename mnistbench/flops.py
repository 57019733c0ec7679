"""Floating-point operations of a model, counted by hand from its layers (mnistbench/models.py),
without importing a framework: the summary reads them for every run.

Conventions, as in most papers that count training FLOPs (Kaplan et al. 2020, the "6N" rule):
- A multiply-add is 2 FLOPs; adding a bias is 1 FLOP per output.
- Only the layers with weights (Dense, Conv2D) are counted. Element-wise work is not: the
  first layer's rescaling (2 FLOPs a pixel), activations, pooling, dropout, the softmax and the
  loss. That leaves out about 1% of the cnn's forward pass and of the mlp's, and 10% of
  softmax regression's (its one layer is as cheap as the rescaling of its input).
- Training an image costs its forward pass and a backward pass of twice the forward (gradients
  with respect to the inputs and to the weights): 3x the forward in all.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistbench.dataset import IMAGE_SHAPE, N_CLASSES

BACKWARD_OVER_FORWARD = 2
# The cnn of models.build_model: (filters, kernel) per Conv2D, each followed by 2x2 max pooling.
CNN_CONVOLUTIONS = ((32, 3), (64, 3))
POOL = 2


@dataclass(frozen=True)
class LayerCount:
    """One layer with weights: its name, the shape of its output for one image, its
    multiply-adds and its bias adds."""

    layer: str
    output_shape: tuple[int, ...]
    multiply_adds: int
    bias_adds: int

    @property
    def flops(self) -> int:
        return 2 * self.multiply_adds + self.bias_adds


def _dense(inputs: int, units: int) -> LayerCount:
    return LayerCount("Dense", (units,), inputs * units, units)


def layer_counts(model: str, hidden_units: int | None = None) -> list[LayerCount]:
    """The layers with weights of `model` ("softmax", "mlp", "cnn") for one image, in order."""
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if model == "softmax":
        return [_dense(pixels, N_CLASSES)]
    if model == "mlp":
        if not hidden_units:
            raise ValueError("model mlp: hidden_units must be a positive number")
        return [_dense(pixels, int(hidden_units)), _dense(int(hidden_units), N_CLASSES)]
    if model == "cnn":
        counts, (height, width), channels = [], IMAGE_SHAPE, 1
        for filters, kernel in CNN_CONVOLUTIONS:
            height, width = height - kernel + 1, width - kernel + 1  # "valid" padding, stride 1
            outputs = height * width * filters
            counts.append(
                LayerCount("Conv2D", (height, width, filters), outputs * kernel * kernel * channels, outputs)
            )
            height, width, channels = height // POOL, width // POOL, filters
        return [*counts, _dense(height * width * channels, N_CLASSES)]
    raise ValueError(f"model: {model!r} is not one of softmax, mlp, cnn")


def forward_flops(model: str, hidden_units: int | None = None) -> int:
    """FLOPs of one image's forward pass (see the module's conventions)."""
    return sum(count.flops for count in layer_counts(model, hidden_units))


def train_flops(model: str, hidden_units: int | None = None) -> int:
    """FLOPs of training on one image: forward and backward, 3x the forward."""
    return (1 + BACKWARD_OVER_FORWARD) * forward_flops(model, hidden_units)
