"""Keras builders for the three neural models, with the default architectures of the design."""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class BandwidthArch:
    """LSTM(64, return_sequences) -> LSTM(32) -> Dense(16, relu) -> Dense(3) quantile heads."""

    lstm_units: tuple[int, int] = (64, 32)
    dense_units: int = 16
    quantiles: tuple[float, float, float] = (0.05, 0.5, 0.95)  # lower, median, upper heads


@dataclass(frozen=True)
class CompressionArch:
    """Dense 64/32/16 with dropout -> softmax over the 10 levels."""

    dense_units: tuple[int, ...] = (64, 32, 16)
    dropout: float = 0.1
    levels: int = 10


@dataclass(frozen=True)
class ConsensusArch:
    """LSTM 64 -> LSTM 32 -> RepeatVector -> LSTM 32 -> LSTM 64 -> Dense(1) on every step."""

    encoder_units: tuple[int, int] = (64, 32)
    decoder_units: tuple[int, int] = (32, 64)


def bandwidth_model(steps: int, n_inputs: int, arch: BandwidthArch) -> keras.Model:
    """Sequence regressor whose outputs are the arch's quantiles of the (scaled) target."""
    inputs = keras.Input((steps, n_inputs), name="scaled_link_samples")
    x = keras.layers.LSTM(arch.lstm_units[0], return_sequences=True)(inputs)
    x = keras.layers.LSTM(arch.lstm_units[1])(x)
    x = keras.layers.Dense(arch.dense_units, activation="relu")(x)
    outputs = keras.layers.Dense(len(arch.quantiles))(x)
    return keras.Model(inputs, outputs, name="bandwidth_predictor")


def pinball_loss(quantiles: tuple[float, ...]) -> object:
    """Quantile (pinball) loss summed over the heads; the middle head is the point prediction."""
    import tensorflow as tf

    q = tf.constant(quantiles, dtype=tf.float32)

    def loss(y_true: object, y_pred: object) -> object:
        error = tf.cast(y_true, tf.float32) - y_pred  # y_true [n,1] broadcasts over heads
        return tf.reduce_mean(tf.reduce_sum(tf.maximum(q * error, (q - 1.0) * error), axis=-1))

    return loss


def compression_model(n_inputs: int, arch: CompressionArch) -> keras.Model:
    """Classifier over compression levels."""
    inputs = keras.Input((n_inputs,), name="scaled_compression_features")
    x = inputs
    for units in arch.dense_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(arch.dropout)(x)
    outputs = keras.layers.Dense(arch.levels, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="compression_selector")


def consensus_autoencoder(steps: int, arch: ConsensusArch) -> keras.Model:
    """Sequence-to-sequence LSTM autoencoder over one scaled latency channel."""
    inputs = keras.Input((steps, 1), name="scaled_latencies")
    x = keras.layers.LSTM(arch.encoder_units[0], return_sequences=True)(inputs)
    x = keras.layers.LSTM(arch.encoder_units[1])(x)
    x = keras.layers.RepeatVector(steps)(x)
    x = keras.layers.LSTM(arch.decoder_units[0], return_sequences=True)(x)
    x = keras.layers.LSTM(arch.decoder_units[1], return_sequences=True)(x)
    # Dense on a [N, T, 64] tensor maps every step with one kernel, as TimeDistributed(Dense(1)) does; Keras 3
    # unrolls TimeDistributed into one slice + matmul per step, about doubling the exported graph's nodes and
    # slowing it in onnxruntime (figures in docs/performance.md, "Each change and its figures").
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs, name="consensus_latency")
