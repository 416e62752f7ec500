"""Handler registry: an :class:`App` maps task names to handlers, with no global state.

    app = App("mail")

    @app.task("send_email", timeout_s=10, retry_on=(ConnectionError,))
    async def send_email(ctx: JobContext, args: dict) -> None: ...

A module exposes ``app``; ``jobpipe worker mymodule`` finds it there.

To enqueue a task by its object (type-checked, see :mod:`jobpipe.tasks`), give
it a queue, ``@app.task(queue="mail")``, which returns a :class:`TaskHandle`;
or implement a :class:`~jobpipe.tasks.TaskRef` declared where producers can
import it without importing the worker: ``@app.task(SEND_EMAIL)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from consumers.retry.policy import DEFAULT_RETRY_ON
from jobpipe.errors import ConfigError
from jobpipe.tasks import TaskRef

if TYPE_CHECKING:
    from consumers.context import JobContext

Handler = Callable[["JobContext", Any], Awaitable[None] | None]
H = Any  # the decorated function is returned unchanged
A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Task:
    """One registered handler and its options.

    Attributes:
        name: the task name jobs carry.
        fn: the handler, ``fn(ctx, args)``.
        is_async: ``fn`` is a coroutine function (runs on the event loop);
            otherwise it runs on the worker's thread pool.
        timeout_s: run-time limit; ``None`` uses the queue's ``timeout_s``.
        retry_on: exception types that are retried; others go to the DLQ.
    """

    name: str
    fn: Handler
    is_async: bool
    timeout_s: float | None = None
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON


@dataclass(frozen=True, slots=True)
class TaskHandle(TaskRef[A], Generic[A, R]):
    """What ``@app.task(queue=...)`` returns: a :class:`~jobpipe.tasks.TaskRef`
    that producers accept, still callable as the handler it wraps.

    Attributes:
        fn: the handler, ``fn(ctx, args)``.
    """

    fn: Callable[[JobContext, A], R]

    def __call__(self, ctx: JobContext, args: A) -> R:
        return self.fn(ctx, args)


class App:
    """A named set of task handlers.

    Args:
        name: shown in logs.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: dict[str, Task] = {}

    @overload
    def task(self, name_or_fn: Callable[..., Any], /) -> Any: ...

    @overload
    def task(self, name_or_fn: TaskRef[A], /, *, timeout_s: float | None = None,
             retry_on: tuple[type[BaseException], ...] | None = None
             ) -> Callable[[Callable[[JobContext, A], R]], Callable[[JobContext, A], R]]: ...

    @overload
    def task(self, name_or_fn: str | None = None, /, *, queue: str,
             timeout_s: float | None = None,
             retry_on: tuple[type[BaseException], ...] | None = None
             ) -> Callable[[Callable[[JobContext, A], R]], TaskHandle[A, R]]: ...

    @overload
    def task(self, name_or_fn: str | None = None, /, *, timeout_s: float | None = None,
             retry_on: tuple[type[BaseException], ...] | None = None
             ) -> Callable[[H], H]: ...

    def task(self, name_or_fn: str | TaskRef[Any] | Callable[..., Any] | None = None, /, *,
             queue: str | None = None, timeout_s: float | None = None,
             retry_on: tuple[type[BaseException], ...] | None = None) -> Any:
        """Register a handler: ``@app.task``, ``@app.task("name")`` or with options.

        Args:
            name_or_fn: the task name (default: the function's name), or the
                :class:`~jobpipe.tasks.TaskRef` this handler implements.
            queue: return a :class:`TaskHandle` on this queue, for producers.
            timeout_s: run-time limit of one attempt (default: the queue's).
            retry_on: exception types to retry (default: every ``Exception``).

        Raises:
            ConfigError: the name is taken, or the options are invalid.
        """
        if isinstance(name_or_fn, TaskRef):
            ref = name_or_fn
            return lambda fn: self._register(ref.name, fn, timeout_s, retry_on)
        if callable(name_or_fn):
            return self._register(name_or_fn.__name__, name_or_fn, timeout_s, retry_on)
        name = name_or_fn

        def decorate(fn: H) -> H:
            registered = self._register(name or fn.__name__, fn, timeout_s, retry_on)
            if queue is None:
                return registered
            return TaskHandle(queue, name or fn.__name__, registered)

        return decorate

    def _register(self, name: str, fn: Any, timeout_s: float | None,
                  retry_on: tuple[type[BaseException], ...] | None) -> Any:
        if isinstance(fn, TaskHandle):  # registered again elsewhere: the handler itself
            fn = fn.fn
        if name in self.tasks:
            raise ConfigError(f"app {self.name!r}: task {name!r} is registered twice")
        if timeout_s is not None and timeout_s <= 0:
            raise ConfigError(f"task {name!r}: timeout_s must be > 0")
        if retry_on is not None and not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            raise ConfigError(f"task {name!r}: retry_on must be a tuple of exception types")
        self.tasks[name] = Task(name, fn, inspect.iscoroutinefunction(fn), timeout_s,
                                DEFAULT_RETRY_ON if retry_on is None else tuple(retry_on))
        return fn

    def get(self, name: str) -> Task | None:
        """The task called ``name``, or ``None``."""
        return self.tasks.get(name)


def load_app(target: str) -> App:
    """Import ``MODULE[:ATTR]`` and return its :class:`App` (``ATTR`` defaults to ``app``).

    Raises:
        ConfigError: the module cannot be imported or holds no App there.
    """
    import importlib

    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise ConfigError(f"{module_name}:{attr or 'app'} is not a consumers.App")
    return app
