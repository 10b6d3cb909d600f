"""Names the binding's type hints share (PEP 484; the package ships py.typed): what a task,
a backend option and a log target may be. Only for annotations."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, Iterator, Union

from .backends import (Executor, ExecutorHandle, Generator, GeneratorHandle, Retriever,
                       RetrieverHandle)

#: a task: a dict, or its JSON text (docs/tasks.md)
Task = Union[Dict[str, Any], str]
#: a backend option: None (the default), a built-in name or spec, a Python backend or a handle
BackendSpec = Union[None, str, Generator, Executor, Retriever, GeneratorHandle, ExecutorHandle,
                    RetrieverHandle]
#: where log lines go: None, a logging.Logger, or a callable(level_name, message)
LogTarget = Union[None, logging.Logger, Callable[[str, str], Any]]

__all__ = ["Any", "BackendSpec", "Callable", "Iterable", "Iterator", "LogTarget", "Task"]
