"""What every command receives: where settings come from, and how chatty to be."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobpipe.settings import Settings, load_settings


@dataclass
class CliContext:
    """Carried in ``click.Context.obj``."""

    config_path: Path | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    #: the settings the command loaded last: they name the services in its errors
    loaded: Settings | None = field(default=None, repr=False)

    def settings(self, overrides: dict[str, Any] | None = None) -> Settings:
        """Settings from file and environment, with command flags on top."""
        if overrides:
            self.loaded = load_settings(self.config_path, overrides=overrides)
            return self.loaded
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        self.loaded = self._settings
        return self._settings


def split_queues(queues: str | None) -> list[str] | None:
    """``--queues a,b`` as a list; ``None`` (all queues) when not given."""
    return [q.strip() for q in queues.split(",") if q.strip()] if queues else None
