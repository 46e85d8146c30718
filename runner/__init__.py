"""One run: its directory, the fit, resume, results, signals and workers."""
