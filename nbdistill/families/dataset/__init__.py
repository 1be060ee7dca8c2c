"""Dataset distillation: a real training set into a few synthetic examples per class."""
