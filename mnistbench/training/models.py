"""The three shipped models, and the frame every network gets; each fits on one screen, as in the
Keras examples. A network of the user's own (mnistbench/networks.py) gets the same input, the
same normalization and the same head."""

import keras
from keras import layers

from mnistbench import networks
from mnistbench.networks import build_body

# MNIST's: the shapes a model is built for when its caller gives none (tests, notebooks).
MNIST_IMAGE = (28, 28)
MNIST_CLASSES = 10


def build_model(
    run,
    shift: float = 0.0,
    scale: float = 255.0,
    image_shape: tuple = MNIST_IMAGE,
    n_classes: int = MNIST_CLASSES,
    network: dict | None = None,
) -> keras.Model:
    """uint8 images of `image_shape` ((h, w) or (h, w, c), as the arrays hold them) in, the
    probabilities of `n_classes` out; the first layer computes (x - shift) / scale. NETWORK is
    the definition of a network of the user's own (networks.Network.definition())."""
    inputs = keras.Input(shape=tuple(image_shape), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / scale, offset=-shift / scale, name="normalize")(inputs)
    with_channels = (*image_shape, 1) if len(image_shape) == 2 else tuple(image_shape)
    if network is not None:
        # The user's function sees one image as height x width x channels.
        if len(image_shape) == 2:
            x = layers.Reshape(with_channels)(x)
        x = build_body(network, x)
        if len(x.shape) > 2:
            x = layers.Flatten()(x)
    elif run.model == "softmax":
        # Softmax regression, as in the blog post: one dense layer on the pixels.
        x = layers.Flatten()(x)
    elif run.model == "mlp":
        # The lesson's 784-64-10 network; its hidden layer has no activation by default.
        x = layers.Flatten()(x)
        x = layers.Dense(run.hidden_units, activation=run.activation)(x)
    elif run.model == "cnn":
        # The Keras "simple MNIST convnet": about 99% test accuracy within a few epochs.
        if len(image_shape) == 2:
            x = layers.Reshape(with_channels)(x)
        x = layers.Conv2D(32, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.5)(x)
    else:
        raise ValueError(
            f"model: {run.model!r} is not one of softmax, mlp, cnn, and no network file was given"
        )
    # float32 output whatever the dtype policy, as Keras advises for mixed precision.
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=run.model)


def build_optimizer(run, network: dict | None = None, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    """The run's optimizer at its learning rate (Keras's default where none), or the one that a
    network's own file builds (networks.build_optimizer: a schedule over the run's steps)."""
    if network is not None and network.get("optimizer"):
        return networks.build_optimizer(network, run, steps_per_epoch)
    optimizers = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
    }
    if run.optimizer not in optimizers:
        raise ValueError(f"optimizer: {run.optimizer!r} is not one of {', '.join(optimizers)}")
    if run.learning_rate is None:
        return optimizers[run.optimizer]()
    return optimizers[run.optimizer](learning_rate=run.learning_rate)
