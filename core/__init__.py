"""Foundation: errors, options, registries, plug-in loading, files; no TensorFlow, nothing of ours above."""
