"""The three models; each fits on one screen, as in the Keras examples."""

import keras
from keras import layers

from mnistbench.dataset import IMAGE_SHAPE, N_CLASSES


def build_model(run, shift: float = 0.0, scale: float = 255.0) -> keras.Model:
    """uint8 images in, class probabilities out; the first layer computes (x - shift) / scale."""
    inputs = keras.Input(shape=IMAGE_SHAPE, dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / scale, offset=-shift / scale, name="normalize")(inputs)
    if run.model == "softmax":
        # Softmax regression, as in the blog post: one dense layer on the 784 pixels.
        x = layers.Flatten()(x)
    elif run.model == "mlp":
        # The lesson's 784-64-10 network; its hidden layer has no activation by default.
        x = layers.Flatten()(x)
        x = layers.Dense(run.hidden_units, activation=run.activation)(x)
    elif run.model == "cnn":
        # The Keras "simple MNIST convnet": about 99% test accuracy within a few epochs.
        x = layers.Reshape((*IMAGE_SHAPE, 1))(x)
        x = layers.Conv2D(32, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.5)(x)
    else:
        raise ValueError(f"model: {run.model!r} is not one of softmax, mlp, cnn")
    # float32 output whatever the dtype policy, as Keras advises for mixed precision.
    outputs = layers.Dense(N_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=run.model)


def build_optimizer(run) -> keras.optimizers.Optimizer:
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
