"""The registry the built-in models (mlp, cnn, resnet) add themselves to."""

from kerasrun.core.registry import Registry

BUILT_IN_MODELS = Registry("model", "--model")
