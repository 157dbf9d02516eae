"""What a run leaves on disk: results.json, samples.jsonl and saved images; written and read
only through this package."""
