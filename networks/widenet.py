"""widenet: a convnet whose width is a parameter, to grow a network until it loads a device
(README "Your own network"). Two blocks of two 3x3 convolutions, each block twice as wide as the
last and closed by 2x2 max pooling, then global average pooling; the workflow adds the input,
its normalization and the classifier head. Its FLOPs grow with the square of `width`."""

from keras import layers


def build(x, width=16, blocks=2):
    for block in range(blocks):
        channels = width * 2**block
        x = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    return layers.GlobalAveragePooling2D()(x)
