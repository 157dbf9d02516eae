"""One folder per benchmark: its loader (the official on-disk format), sample builder, prompt
builder, answer extractor and metrics side by side."""
