"""The mimic_cxr suite: loader, prompts and metrics."""
