"""Prompt construction lives in :mod:`prefloop.prompting` (the trainer's gate needs it too);
this module re-exports it for the service."""

from prefloop.prompting import *  # noqa: F403
from prefloop.prompting import __all__ as __all__
