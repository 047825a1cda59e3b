"""CLI sub-commands; each module defines ``register(commands, train_commands)`` (see cli.py)."""
