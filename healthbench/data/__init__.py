"""Shared data I/O every suite uses: safe paths inside a data root, image/DICOM/NIfTI decoding,
Hugging Face-style parquet files and the bundled sample images. No benchmark lives here; each
benchmark's loader is in ``healthbench.suites.<benchmark>``."""
