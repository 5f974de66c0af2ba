"""Trace recording, DataFrame views, export and import."""

from wtlab.trace.recorder import Recorder

__all__ = ["Recorder"]
