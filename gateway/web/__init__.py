"""HTTP blueprints: provider callbacks under /at, health under /."""
