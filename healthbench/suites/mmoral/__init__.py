"""The mmoral suite: loader, prompts and metrics."""
