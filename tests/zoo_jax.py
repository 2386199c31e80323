"""JAX / Flax models for the conversion tests, as factories (package.module:function).

Each is trained for a few optimizer steps on a synthetic task (the CNN's BatchNorm statistics
come from those training batches), so that outputs are far from zero and far from the init.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import nnx


def _task(shape, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, *shape)).astype(np.float32)
    projection = rng.standard_normal((x[0].size, classes)).astype(np.float32)
    y = (x.reshape(64, -1) @ projection).argmax(-1)  # a class that depends on every input value
    return jnp.asarray(x), jnp.asarray(y)


# -- an MLP as a jitted function, its weights closed over ------------------------------------------
@functools.lru_cache(maxsize=None)
def _mlp_params():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w1": jax.random.normal(keys[0], (8, 32)) / np.sqrt(8), "b1": jnp.zeros(32),
              "w2": jax.random.normal(keys[1], (32, 4)) / np.sqrt(32), "b2": jnp.zeros(4)}
    x, y = _task((8,), 4, 1)
    optimizer = optax.adam(0.02)
    state = optimizer.init(params)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(_mlp_apply(p, x), y).mean()
    for _ in range(30):
        grads = jax.grad(loss)(params)
        updates, state = optimizer.update(grads, state)
        params = optax.apply_updates(params, updates)
    return params


def _mlp_apply(p, x):
    hidden = jnp.tanh(x @ p["w1"] + p["b1"])
    return jax.nn.log_softmax(hidden @ p["w2"] + p["b2"])


def mlp():
    """jax.jit(f) closing over trained weights: (batch, 8) -> log-probabilities (batch, 4)."""
    params = _mlp_params()
    return jax.jit(lambda x: _mlp_apply(params, x))


# -- a Flax linen CNN with BatchNorm, as (module, variables) ---------------------------------------
class CNN(nn.Module):
    classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(16, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(x)
        x = nn.relu(x)
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.Conv(32, (3, 3), strides=2, feature_group_count=2)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(x)
        x = nn.gelu(x)
        x = nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME")
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.classes)(x)


def cnn_init():
    """The CNN freshly initialised (for --weights)."""
    module = CNN()
    return module, module.init(jax.random.PRNGKey(1), jnp.zeros((1, 16, 16, 3)))


@functools.lru_cache(maxsize=None)
def _cnn_trained():
    module, variables = cnn_init()
    params, stats = variables["params"], variables["batch_stats"]
    x, y = _task((16, 16, 3), 10, 2)
    optimizer = optax.adam(0.01)
    state = optimizer.init(params)

    def loss(p, s, xb, yb):
        logits, updated = module.apply({"params": p, "batch_stats": s}, xb, train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), updated["batch_stats"]
    step = jax.jit(jax.value_and_grad(loss, has_aux=True))
    for i in range(25):
        batch = slice((i % 4) * 16, (i % 4) * 16 + 16)
        (_, stats), grads = step(params, stats, x[batch], y[batch])
        updates, state = optimizer.update(grads, state)
        params = optax.apply_updates(params, updates)
    return module, {"params": params, "batch_stats": stats}


def cnn():
    """(linen module, trained variables): (batch, 16, 16, 3) NHWC -> logits (batch, 10)."""
    return _cnn_trained()


# -- a Flax NNX transformer block ------------------------------------------------------------------
class Block(nnx.Module):
    def __init__(self, dim: int = 32, heads: int = 4, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
        self.up = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.down = nnx.Linear(4 * dim, dim, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)

    def __call__(self, x):
        x = x + self.dropout(self.attention(self.norm1(x)))
        return x + self.dropout(self.down(nnx.gelu(self.up(self.norm2(x)))))


@functools.lru_cache(maxsize=None)
def _block_state():
    model = Block(rngs=nnx.Rngs(3))
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((16, 7, 32)).astype(np.float32))
    target = jnp.roll(x, 1, axis=1) * 0.5
    optimizer = nnx.Optimizer(model, optax.adam(0.01), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: ((m(x) - target) ** 2).mean())(model)
        optimizer.update(model, grads)
    for _ in range(10):
        step(model, optimizer)
    return nnx.state(model)


def block():
    """An NNX transformer block (LayerNorm, multi-head attention, GELU MLP, dropout): (batch, seq, 32)."""
    model = Block(rngs=nnx.Rngs(3))
    nnx.update(model, _block_state())
    return model


def sorted_values():
    """A function using a primitive modelport does not convert (sort)."""
    return jax.jit(lambda x: jnp.sort(x, axis=-1))


def not_a_model():
    return {"weights": np.zeros(3)}


def block_init():
    """The transformer block freshly initialised (for --weights)."""
    return Block(rngs=nnx.Rngs(3))
