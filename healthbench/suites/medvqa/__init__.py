"""The medvqa suite: loader, prompts and metrics."""
