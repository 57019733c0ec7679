"""Floating-point operations of a model, counted by hand from its layers (mnistbench/training/models.py),
without importing a framework: the summary reads them for every run.

Conventions:
- A multiply-add is 2 FLOPs; adding a bias is 1 FLOP per output.
- Only the layers with weights (Dense, Conv2D) are counted. Element-wise work is not: the
  first layer's rescaling (2 FLOPs a pixel), activations, pooling, dropout, the softmax, the
  loss and the optimizer's update. That leaves out about 1% of the cnn's forward pass and of
  the mlp's, and 10% of softmax regression's (its one layer is as cheap as the rescaling of
  its input).
- Training an image costs, per layer with weights, its forward pass, its weight gradient (as
  many multiply-adds as its forward pass, and one add per output for the bias gradient) and
  its input gradient (as many multiply-adds again), except the first layer's input gradient:
  its input is the data (the Rescaling before it has no weights), which no backend
  differentiates. The "3x the forward" rule (Kaplan et al. 2020's 6N) counts that gradient
  too, and so overcounts a shallow model: softmax regression by half, the mlp by 49%.
- XLA's own count of Keras's compiled train step on JAX (tests/test_flops.py) is these counts
  plus the element-wise work: ours are 91% (softmax regression) to 99% (the cnn's forward
  pass) of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistbench.data.dataset import IMAGE_SHAPE, N_CLASSES

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
        """Its forward pass."""
        return 2 * self.multiply_adds + self.bias_adds

    @property
    def weight_gradient_flops(self) -> int:
        """The gradient of its kernel (one multiply-add per forward one) and of its bias (the
        output gradients summed: one add per output)."""
        return 2 * self.multiply_adds + self.bias_adds

    @property
    def input_gradient_flops(self) -> int:
        """The gradient of its input, for the layer below: one multiply-add per forward one."""
        return 2 * self.multiply_adds


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
    """FLOPs of training on one image: every layer's forward pass and weight gradient, and the
    input gradient of every layer but the first, whose input is the data (see the conventions)."""
    counts = layer_counts(model, hidden_units)
    passes = sum(count.flops + count.weight_gradient_flops for count in counts)
    return passes + sum(count.input_gradient_flops for count in counts[1:])
