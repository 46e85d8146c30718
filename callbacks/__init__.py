"""Callback families: one module per Keras callback, assembled by `builder.py`."""
