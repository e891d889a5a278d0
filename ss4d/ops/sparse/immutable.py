"""`Immutable`: the base of ss4d's value objects whose fields are set once (``SparseSites``, ``SparseTensor``)."""

from typing import Any, ClassVar

__all__ = ["Immutable"]


class Immutable:
    """Slots set once, by :meth:`_init_slots` in the constructor; assigning afterwards raises ``AttributeError``.

    A subclass declares its ``__slots__`` and may set ``_mutation_hint`` (appended to the error message)
    to say how to get a changed copy instead.
    """

    __slots__ = ()
    _mutation_hint: ClassVar[str] = ""

    def _init_slots(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (tried to set {name!r}){self._mutation_hint}")
