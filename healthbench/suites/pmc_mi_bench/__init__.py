"""The pmc_mi_bench suite: loader, prompts and metrics."""
