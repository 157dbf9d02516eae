"""The generation suite: loader, prompts and metrics."""
