"""The config layer: flags and YAML resolved and checked before TensorFlow loads, and the text that explains them."""
