"""From a model's response to numbers: the Metric contract, generic metrics (choice, text, label,
image), per-sample scoring, aggregation with bootstrap intervals and paired tests."""
