"""Errors nbdistill raises on purpose, each naming the problem in words a user can act on."""


class NbDistillError(Exception):
    """Base of every error nbdistill raises on purpose."""


class ConfigError(NbDistillError, ValueError):
    """A bad method name, hyper-parameter, model or data combination, found before training."""


class RunFolderError(NbDistillError):
    """A run folder that is missing, corrupt or not a run folder."""


class TrainingFailed(NbDistillError):
    """A run failed while training; ``run`` is the run folder, already marked ``failed``."""

    def __init__(self, message: str, run=None):
        super().__init__(message)
        self.run = run


class NonFiniteLoss(NbDistillError, FloatingPointError):
    """The loss became NaN or infinite."""
