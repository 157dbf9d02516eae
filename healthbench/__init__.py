"""healthbench: evaluation harness for unified medical vision-language models."""
__version__ = "0.1.0"
