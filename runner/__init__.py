"""The machinery `train.py` drives: options, config layering, the fit itself."""
