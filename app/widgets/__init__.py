"""Layout-only widgets: they show state and emit user intent, nothing more."""
