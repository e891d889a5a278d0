"""A small, explicit backend registry shared by the op families (sparse convolution, attention).

Resolution order for a name:

1. an explicit backend name given per call or per module wins;
2. ``"auto"`` consults the innermost :meth:`BackendRegistry.use` scope, if any;
3. otherwise ``"auto"`` takes the first backend of the device's preference list that is available.

No environment variable and no import-time global changes the choice.
"""

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Generic, Protocol, TypeVar, runtime_checkable

import torch

from ss4d.errors import BackendUnavailableError, UnknownBackendError

__all__ = ["Backend", "BackendRegistry"]


@runtime_checkable
class Backend(Protocol):
    """What a registry needs of a backend."""

    name: str
    install_hint: str

    def is_available(self, device: torch.device) -> bool:
        """True when the backend is installed and can run on ``device``."""
        ...

    def unavailable_reason(self, device: torch.device) -> str:
        """Why :meth:`is_available` is False (empty when it is available)."""
        ...


B = TypeVar("B", bound=Backend)


class BackendRegistry(Generic[B]):
    """Named backends of one op family, with a per-device ``"auto"`` preference order.

    Args:
        family: human-readable family name used in error messages (e.g. ``"sparse-conv"``).
        preference: maps a device type (``"cpu"``, ``"cuda"``, ...) to backend names, fastest first.
        fallback: the backend ``"auto"`` falls back to (must run everywhere).
    """

    def __init__(self, family: str, *, preference: Callable[[str], list[str]], fallback: str) -> None:
        self.family = family
        self._backends: dict[str, B] = {}
        self._preference = preference
        self._fallback = fallback
        self._scope: ContextVar[str | None] = ContextVar(f"ss4d_{family}_backend", default=None)

    def register(self, backend: B) -> B:
        """Add ``backend``; a duplicate name is an error."""
        if backend.name in self._backends:
            raise ValueError(f"{self.family} backend {backend.name!r} is already registered")
        self._backends[backend.name] = backend
        return backend

    def names(self) -> list[str]:
        """All registered names (available or not)."""
        return list(self._backends)

    def available(self, device: torch.device | str = "cpu") -> list[str]:
        """Names of the backends that can run on ``device``."""
        device = torch.device(device)
        return [n for n, b in self._backends.items() if b.is_available(device)]

    def get(self, name: str) -> B:
        """The backend called ``name`` (available or not); unknown names raise."""
        try:
            return self._backends[name]
        except KeyError:
            raise UnknownBackendError(
                f"unknown {self.family} backend {name!r}; known: {sorted(self._backends)} or 'auto'"
            ) from None

    def resolve(self, name: str | None, device: torch.device | str) -> B:
        """The backend to run for ``name`` (``None`` means ``"auto"``) on ``device``.

        Raises:
            UnknownBackendError: ``name`` is not registered.
            BackendUnavailableError: ``name`` is registered but cannot run on ``device``.
        """
        device = torch.device(device)
        if name is None or name == "auto":
            scoped = self._scope.get()
            if scoped is not None:
                return self.resolve(scoped, device)
            for candidate in self._preference(device.type):
                backend = self._backends.get(candidate)
                if backend is not None and backend.is_available(device):
                    return backend
            return self.resolve(self._fallback, device)
        backend = self.get(name)
        if not backend.is_available(device):
            raise BackendUnavailableError(
                f"{self.family} backend {name!r} cannot run on {device}: "
                f"{backend.unavailable_reason(device)} {backend.install_hint}".strip()
            )
        return backend

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[None]:
        """Within the block, ``"auto"`` means ``name`` (explicit per-call/module names still win).

        The name is checked when entering the block, so typos fail early.
        """
        if name != "auto":
            self.get(name)
        token = self._scope.set(None if name == "auto" else name)
        try:
            yield
        finally:
            self._scope.reset(token)
