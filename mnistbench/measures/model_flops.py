"""Floating-point operations of any built Keras model, counted layer by layer from its graph.

mnistbench/measures/flops.py counts the three shipped models by hand without a framework; this counts
whatever network it is given. It reads a built keras.Model (functional or Sequential, nested
models walked into) and imports nothing: not Keras (the caller has loaded it, on whatever
backend), nor mnistbench's training modules.

Conventions, per image (the batch dimension excluded), whatever the dtype:
- A multiply-add is 2 FLOPs; adding a bias is 1 FLOP per output (as flops.py).
- Element-wise layers without weights cost nothing: activations, rescaling and normalization
  by constants, dropout and noise, merges (Add, Concatenate...), reshapes, padding, cropping.
- Dense, EinsumDense and the Conv family (grouped, depthwise, separable, transposed) count
  their multiply-adds. A convolution counts only the kernel taps that land on the input, not
  on its padding (or, transposed, on the holes between strided inputs), as XLA does.
- Pooling: max pooling (window - 1) comparisons per output; average pooling (window - 1) adds
  and a division per output; padding counted as part of the window, as XLA does.
- BatchNormalization: 2 FLOPs an element (the scale and shift, folded per channel). Training
  adds the batch statistics: 4 an element (mean: 1 add; variance: subtract, square, add).
- LayerNormalization: statistics 4 an element, then a multiply by the inverse deviation, and
  gamma and beta (1 each): 7 an element; RMS scaling: square, add, multiply, gamma: 4.
- "forward" is inference (training=False). Training an image costs, per layer: its forward
  pass (plus the batch statistics), its weight gradient when it has trainable weights, and its
  input gradient when the input depends on trainable weights below it (the first weighted
  layer's input is data, which no backend differentiates).
  Weight gradient: one multiply-add per forward one and one add per output for the bias;
  normalizations 2 (gamma) + 1 (beta) an element.
  Input gradient: one multiply-add per forward one; normalizations over batch or features
  8 an element (+1 for gamma), BatchNormalization on moving statistics 1; max pooling its
  comparisons again, average pooling 1 division per output (routing the gradient to the
  window, and the adds where windows overlap, are not counted).
  Element-wise work (the loss, the optimizer's update, activations' gradients) is not counted.
- A layer this does not know (a Keras layer not listed here, a subclass of a listed one, a
  custom layer with weights or sublayers, a shape unknown before the data) is named in
  `unknown`, and the model's totals are None: never a wrong number. A custom layer with neither
  weights nor sublayers is taken as element-wise (0).
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass


@dataclass(frozen=True)
class LayerRow:
    """One call of one layer: its FLOPs per image, and which of them training spends."""

    name: str
    class_name: str
    forward: int
    weight_gradient: int
    input_gradient: int
    batch_statistics: int  # forward work of training only (BatchNormalization)
    trains_weights: bool
    needs_input_gradient: bool

    @property
    def train(self) -> int:
        return (
            self.forward
            + self.batch_statistics
            + (self.weight_gradient if self.trains_weights else 0)
            + (self.input_gradient if self.needs_input_gradient else 0)
        )


@dataclass(frozen=True)
class ModelCount:
    rows: tuple[LayerRow, ...]
    unknown: tuple[str, ...]  # class names of the layers that could not be counted

    @property
    def forward(self) -> int | None:
        return None if self.unknown else sum(row.forward for row in self.rows)

    @property
    def train(self) -> int | None:
        return None if self.unknown else sum(row.train for row in self.rows)


@dataclass(frozen=True)
class _Cost:
    forward: int
    weight_gradient: int
    input_gradient: int
    batch_statistics: int = 0


ELEMENT_WISE = frozenset(
    """InputLayer Flatten Reshape Permute RepeatVector Identity Masking ActivityRegularization
    Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianDropout GaussianNoise
    AlphaDropout Activation ReLU LeakyReLU ELU Softmax Rescaling Normalization
    Cropping1D Cropping2D Cropping3D ZeroPadding1D ZeroPadding2D ZeroPadding3D
    Concatenate Add Subtract Multiply Average Maximum Minimum UpSampling1D UpSampling3D""".split()
)


def count(model) -> ModelCount:
    """The FLOPs per image of a built Keras model (see the module's conventions)."""
    rows: list[LayerRow] = []
    unknown: list[str] = []
    graph = _graph(model)
    if graph is None:
        return ModelCount((), (type(model).__name__,))
    _walk(graph, [False] * len(graph._inputs), "", rows, unknown)
    return ModelCount(tuple(rows), tuple(unknown))


def _graph(model):
    """The functional graph of a model whose call is its graph; None for any other model."""
    if type(model).__name__ == "Sequential" and _is_keras(model):
        if model._functional is None:
            raise ValueError(f"model {model.name!r}: build it first (with an Input or build())")
        model = model._functional
    keras_functional = next(
        (c for c in type(model).__mro__ if c.__name__ == "Functional" and _is_keras(c)), None
    )
    if keras_functional is None or type(model).call is not keras_functional.call:
        return None
    return model


def _is_keras(layer_or_class) -> bool:
    cls = layer_or_class if isinstance(layer_or_class, type) else type(layer_or_class)
    return cls.__module__.split(".")[0] == "keras"


def _walk(graph, inputs_carry_gradient, prefix, rows, unknown) -> list[bool]:
    """Counts the layers of `graph` in order from its inputs; returns whether each of its
    outputs depends on trainable weights (so the layers above need their input gradients)."""
    carries = {id(tensor): flag for tensor, flag in zip(graph._inputs, inputs_carry_gradient, strict=True)}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            layer, inputs = node.operation, node.arguments.keras_tensors
            carried = any(carries.get(id(tensor), False) for tensor in inputs)
            if type(layer).__name__ == "InputLayer":
                continue  # its output is one of the graph's inputs, already marked
            inner = _graph(layer)
            if inner is not None:
                inner_carry = [carries.get(id(tensor), False) for tensor in inputs]
                outputs = _walk(inner, inner_carry, f"{prefix}{layer.name}/", rows, unknown)
                carries.update({id(tensor): flag for tensor, flag in zip(node.outputs, outputs, strict=True)})
                continue
            trains = bool(getattr(layer, "trainable_weights", []))
            cost = _cost(layer, inputs, node.outputs)
            if cost is None:
                unknown.append(type(layer).__name__)
            else:
                row_name = f"{prefix}{layer.name}"
                rows.append(LayerRow(row_name, type(layer).__name__, *astuple(cost), trains, carried))
            carries.update({id(tensor): carried or trains for tensor in node.outputs})
    return [carries.get(id(tensor), False) for tensor in graph._outputs]


def _cost(layer, inputs, outputs) -> _Cost | None:
    shapes = [tuple(tensor.shape[1:]) for tensor in (*inputs, *outputs)]
    if any(size is None for shape in shapes for size in shape):
        return None  # a size known only from the data
    name = type(layer).__name__
    if not _is_keras(layer):
        has_parts = getattr(layer, "weights", []) or getattr(layer, "_layers", [])
        return None if has_parts else _Cost(0, 0, 0)
    if name in ELEMENT_WISE or (name == "UpSampling2D" and layer.interpolation == "nearest"):
        return _Cost(0, 0, 0)
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    counter = _COUNTERS.get(name.rstrip("123D") if "Pooling" in name else name)
    return counter(layer, shapes[0], shapes[1]) if counter else None


def _weighted(multiply_adds: int, bias_adds: int) -> _Cost:
    return _Cost(2 * multiply_adds + bias_adds, 2 * multiply_adds + bias_adds, 2 * multiply_adds)


def _dense(layer, x, y) -> _Cost | None:
    if getattr(layer, "lora_enabled", False):
        return None
    bias_adds = math.prod(y) if layer.use_bias else 0
    return _weighted(math.prod(x) * layer.units, bias_adds)


def _einsum_dense(layer, x, y) -> _Cost | None:
    if getattr(layer, "lora_enabled", False):
        return None
    operands, output = layer.equation.split("->")
    input_spec, kernel_spec = operands.split(",")
    x = (1, *x)  # the equation names the batch dimension too
    if "..." in input_spec:
        spread = "".join(chr(0x2460 + i) for i in range(len(x) - len(input_spec) + 3))
        input_spec, output = input_spec.replace("...", spread), output.replace("...", spread)
    sizes = dict(zip(input_spec, x, strict=True)) | dict(zip(kernel_spec, layer.kernel.shape, strict=True))
    if (set(input_spec) ^ set(kernel_spec)) - set(output):
        return None  # an index summed within one operand: a reduction before the product
    bias_adds = math.prod(y) if layer.bias is not None else 0
    return _weighted(math.prod(sizes.values()), bias_adds)


def _spatial(layer, shape) -> tuple[tuple[int, ...], int]:
    if layer.data_format == "channels_first":
        return shape[1:], shape[0]
    return shape[:-1], shape[-1]


def _taps(size, out_size, kernel, stride, dilation, pad_left, input_dilation=1) -> int:
    """Pairs (output position, kernel tap) of one dimension that land on an input element."""
    return sum(
        1
        for out in range(out_size)
        for tap in range(kernel)
        if (at := out * stride + tap * dilation - pad_left) >= 0
        and at % input_dilation == 0
        and at // input_dilation < size
    )


def _convolution_taps(layer, x, y) -> tuple[int, int, int]:
    """Kernel taps that land on the input, summed over the output positions; channels in, out."""
    (spatial_in, channels_in), (spatial_out, channels_out) = _spatial(layer, x), _spatial(layer, y)
    taps = 1
    for dimension, (size, out_size, kernel, stride, dilation) in enumerate(
        zip(spatial_in, spatial_out, layer.kernel_size, layer.strides, layer.dilation_rate, strict=True)
    ):
        if "Transpose" in type(layer).__name__:
            pad_left = _transposed_pad_left(layer, dimension, kernel, stride, dilation)
            taps *= _taps(size, out_size, kernel, 1, dilation, pad_left, input_dilation=stride)
            continue
        reach = (kernel - 1) * dilation + 1
        pad_left = {
            "valid": 0,
            "same": max((out_size - 1) * stride + reach - size, 0) // 2,
            "causal": reach - 1,
        }[layer.padding]
        taps *= _taps(size, out_size, kernel, stride, dilation, pad_left)
    return taps, channels_in, channels_out


def _transposed_pad_left(layer, dimension, kernel, stride, dilation) -> int:
    """Keras's padding of the strided input in a transposed convolution (as on JAX)."""
    reach = (kernel - 1) * dilation + 1
    if layer.padding == "valid":
        return reach - 1
    output_padding = layer.output_padding
    if output_padding is None:
        pad = stride + reach - 2
    else:
        extra = output_padding if isinstance(output_padding, int) else output_padding[dimension]
        pad = reach + reach % 2 - 2 + extra
    return min(pad // 2 + pad % 2, reach - 1)


def _convolution(layer, x, y) -> _Cost:
    taps, channels_in, channels_out = _convolution_taps(layer, x, y)
    groups = getattr(layer, "groups", 1)
    bias_adds = math.prod(y) if layer.use_bias else 0
    return _weighted(taps * channels_in // groups * channels_out, bias_adds)


def _depthwise(layer, x, y) -> _Cost:
    taps, channels_in, _ = _convolution_taps(layer, x, y)
    bias_adds = math.prod(y) if layer.use_bias else 0
    return _weighted(taps * channels_in * layer.depth_multiplier, bias_adds)


def _separable(layer, x, y) -> _Cost:
    """A depthwise convolution, then a pointwise one: the pointwise input gradient is needed
    for the depthwise kernel's gradient, so it is part of the weight gradient."""
    taps, channels_in, channels_out = _convolution_taps(layer, x, y)
    depthwise = taps * channels_in * layer.depth_multiplier
    pointwise = math.prod(_spatial(layer, y)[0]) * channels_in * layer.depth_multiplier * channels_out
    bias_adds = math.prod(y) if layer.use_bias else 0
    passes = 2 * (depthwise + pointwise) + bias_adds
    return _Cost(passes, passes + 2 * pointwise, 2 * depthwise)


def _batch_normalization(layer, x, y) -> _Cost:
    elements = math.prod(x)
    weight_gradient = (2 * layer.scale + layer.center) * elements
    if not layer.trainable:  # Keras then normalizes with the moving statistics in training too
        return _Cost(2 * elements, weight_gradient, elements)
    return _Cost(2 * elements, weight_gradient, (8 + layer.scale) * elements, 4 * elements)


def _layer_normalization(layer, x, y) -> _Cost:
    elements = math.prod(x)
    if layer.rms_scaling:
        return _Cost((3 + layer.scale) * elements, 2 * layer.scale * elements, (5 + layer.scale) * elements)
    forward = 5 + layer.scale + layer.center
    weight_gradient = 2 * layer.scale + layer.center
    return _Cost(forward * elements, weight_gradient * elements, (8 + layer.scale) * elements)


def _pooling(layer, x, y) -> _Cost:
    outputs = math.prod(y)
    window = math.prod(x) // outputs if "Global" in type(layer).__name__ else math.prod(layer.pool_size)
    if "Max" in type(layer).__name__:
        return _Cost((window - 1) * outputs, 0, (window - 1) * outputs)
    return _Cost(window * outputs, 0, outputs)


_COUNTERS = {
    "Dense": _dense,
    "EinsumDense": _einsum_dense,
    **{f"Conv{n}D": _convolution for n in (1, 2, 3)},
    **{f"Conv{n}DTranspose": _convolution for n in (1, 2, 3)},
    **{f"DepthwiseConv{n}D": _depthwise for n in (1, 2)},
    **{f"SeparableConv{n}D": _separable for n in (1, 2)},
    "BatchNormalization": _batch_normalization,
    "LayerNormalization": _layer_normalization,
    **{
        name: _pooling
        for name in ("MaxPooling", "AveragePooling", "GlobalMaxPooling", "GlobalAveragePooling")
    },
}
