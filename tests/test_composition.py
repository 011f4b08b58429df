"""How a process is put together: the handler modules are imported, not named in strings."""

from __future__ import annotations

from bot.telegram.application import HANDLER_MODULES, register_handlers


def test_the_handler_modules_are_the_modules_themselves_in_registration_order() -> None:
    assert [module.__name__ for module in HANDLER_MODULES] == [
        "handlers.guards",
        "handlers.start",
        "handlers.staff",
        "handlers.complaints",
        "handlers.status",
        "handlers.departments",
        "handlers.browse",
        "handlers.questions",
        "handlers.fallback",
    ]


def test_register_handlers_calls_each_module_in_order() -> None:
    called: list[str] = []

    class Module:
        def __init__(self, name: str) -> None:
            self.__name__ = name

        def register(self, application: object) -> None:
            called.append(self.__name__)

    modules = [Module("first"), Module("second")]
    assert register_handlers(None, modules) == ["first", "second"]  # type: ignore[arg-type]
    assert called == ["first", "second"]
