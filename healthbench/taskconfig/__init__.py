"""Task and group YAML: the schema (``schema``), the index of task files (``index``) and prompt
rendering (``prompts``)."""
