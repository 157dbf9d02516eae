"""The omnimedvqa suite: loader, prompts and metrics."""
