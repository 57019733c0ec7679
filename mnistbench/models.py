"""The three models; each fits on one screen, as in the Keras examples."""

import keras
from keras import layers

N_CLASSES = 10


def build_model(params: dict, shift: float = 0.0, scale: float = 255.0) -> keras.Model:
    """uint8 images in, class probabilities out; the first layer computes (x - shift) / scale."""
    inputs = keras.Input(shape=(28, 28), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / scale, offset=-shift / scale, name="normalize")(inputs)
    if params["model"] == "softmax":
        # Softmax regression, as in the blog post: one dense layer on the 784 pixels.
        x = layers.Flatten()(x)
    elif params["model"] == "mlp":
        # The lesson's 784-64-10 network; its hidden layer has no activation by default.
        x = layers.Flatten()(x)
        x = layers.Dense(params["hidden_units"], activation=params["activation"])(x)
    elif params["model"] == "cnn":
        # The Keras "simple MNIST convnet": about 99% test accuracy within a few epochs.
        x = layers.Reshape((28, 28, 1))(x)
        x = layers.Conv2D(32, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.5)(x)
    else:
        raise ValueError(f"model: {params['model']!r} is not one of softmax, mlp, cnn")
    outputs = layers.Dense(N_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=params["model"])


def build_optimizer(params: dict) -> keras.optimizers.Optimizer:
    optimizers = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
    }
    if params["optimizer"] not in optimizers:
        raise ValueError(f"optimizer: {params['optimizer']!r} is not one of {', '.join(optimizers)}")
    if params["learning_rate"] is None:
        return optimizers[params["optimizer"]]()
    return optimizers[params["optimizer"]](learning_rate=params["learning_rate"])
