"""Live panels and the views they (and ``Run.plot``) draw."""
from . import views

__all__ = ["views"]
