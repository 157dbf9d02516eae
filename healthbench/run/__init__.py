"""Running an evaluation: evaluate (the orchestration), runner (batches, resume, streaming),
distributed sharding, the judge client and the lm-eval adapter."""
