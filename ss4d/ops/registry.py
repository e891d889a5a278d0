"""Registries: the one way ss4d maps a name to a class, a factory or a backend.

:class:`Registry` is an allowlist of named objects of one kind (temporal layers, attention layers, MLPs,
norms, CompNet variants, ...): configs store a *name*, and only registered names resolve, never an
arbitrary import path. :class:`BackendRegistry` adds what op backends need: availability per device, a
per-device priority that ``"auto"`` reads, and a scoped override.

Resolution order for a backend name:

1. an explicit backend name given per call or per module wins;
2. ``"auto"`` consults the innermost :meth:`BackendRegistry.use` scope, if any;
3. otherwise ``"auto"`` takes the available backend with the highest priority for the device type
   (registration order breaks ties), and the fallback when none is.

No environment variable and no import-time global changes the choice. See docs/design.md, "Registries".
"""

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Generic, Protocol, TypeVar, overload, runtime_checkable

import torch

from ss4d.errors import BackendUnavailableError, UnknownBackendError

__all__ = ["Backend", "BackendRegistry", "Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind; a duplicate name is an error, an unknown one lists the known names.

    Args:
        kind: what the entries are, for error messages (e.g. ``"temporal layer"``).
        error: the exception type for unknown names (a ``ValueError`` subclass).
    """

    def __init__(self, kind: str, *, error: type[ValueError] = ValueError) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._error = error

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name``; without ``obj`` returns a decorator (``@reg.register("name")``)."""

        def add(entry: T) -> T:
            if not isinstance(name, str) or not name:
                raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The entry called ``name``; unknown names raise, listing the known ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self._error(f"unknown {self.kind} {name!r}; known: {sorted(self._entries)}") from None

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its entry (e.g. to undo a registration made for a test)."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    def names(self) -> list[str]:
        """All registered names, in registration order."""
        return list(self._entries)

    def name_of(self, obj: T) -> str:
        """The name ``obj`` is registered under (the reverse of :meth:`get`)."""
        for name, entry in self._entries.items():
            if entry is obj:
                return name
        raise self._error(f"{obj!r} is not a registered {self.kind}; register it first (known: {self.names()})")

    def __contains__(self, name: object) -> bool:
        return name in self._entries


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


class BackendRegistry(Registry[B]):
    """Named backends of one op family; ``"auto"`` takes the available one of highest priority.

    Args:
        family: human-readable family name used in error messages (e.g. ``"sparse-conv"``).
        fallback: the backend ``"auto"`` falls back to (must run everywhere).
    """

    def __init__(self, family: str, *, fallback: str) -> None:
        super().__init__(f"{family} backend", error=UnknownBackendError)
        self.family = family
        self._priority: dict[str, dict[str, int]] = {}
        self._fallback = fallback
        self._scope: ContextVar[str | None] = ContextVar(f"ss4d_{family}_backend", default=None)

    def register(self, backend: B, *, priority: Mapping[str, int] | None = None) -> B:  # type: ignore[override]
        """Add ``backend``; ``priority`` maps device types (``"cpu"``, ``"cuda"``, ...) to a rank for
        ``"auto"`` (higher first). A backend without a rank for a device type is never auto-picked there
        (it still runs when asked for by name). A duplicate name is an error."""
        super().register(backend.name, backend)
        self._priority[backend.name] = dict(priority or {})
        return backend

    def unregister(self, name: str) -> B:
        self._priority.pop(name, None)
        return super().unregister(name)

    def get(self, name: str) -> B:
        """The backend called ``name`` (available or not); unknown names raise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownBackendError(
                f"unknown {self.family} backend {name!r}; known: {sorted(self._entries)} or 'auto'"
            ) from None

    def priority(self, device_type: str) -> list[str]:
        """The names ``"auto"`` tries on ``device_type``, highest priority first."""
        ranked = [(p[device_type], i, n) for i, (n, p) in enumerate(self._priority.items()) if device_type in p]
        return [n for _, _, n in sorted(ranked, key=lambda r: (-r[0], r[1]))]

    def available(self, device: torch.device | str = "cpu") -> list[str]:
        """Names of the backends that can run on ``device``."""
        device = torch.device(device)
        return [n for n, b in self._entries.items() if b.is_available(device)]

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
            for candidate in self.priority(device.type):
                backend = self._entries[candidate]
                if backend.is_available(device):
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
