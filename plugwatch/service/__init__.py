"""The running service: the composition root, the sampler, the writer, workers and the demo."""
