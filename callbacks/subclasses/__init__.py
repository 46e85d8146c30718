"""Our subclasses of Keras callbacks, where the Keras class needs a fix.

A family names one as its `subclass`. These modules import Keras, so they
live apart from the family modules, which `--help` loads without it.
"""
