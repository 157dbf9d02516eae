"""The mmmu suite: loader, prompts and metrics."""
