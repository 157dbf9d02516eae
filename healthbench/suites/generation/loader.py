"""Loaders for the generation-fidelity suites: reconstruction, super-resolution, CT↔MRI.

Each sample carries the model's input image (``images``) and the reference image (``target``),
both as ``ImageSource`` so that the same file/slice/window is rendered identically wherever it is
read. Slicing rules, windows and the down-scaling factor come from the task YAML and are recorded
in each sample's meta.

Layouts:
* ``image_folder`` — any folder of PNG/JPEG/DICOM/NIfTI (reconstruction: reproduce the input).
* ``ixi`` — IXI brain MRI volumes ``<root>/<anything>/IXI*-T1.nii.gz`` (``sequence:`` T2, PD,
  MRA for the others; super-resolution: the input is the slice down-scaled ×``factor`` with
  bicubic resampling; the reference is the slice).
* ``synthrad2023`` — SynthRAD2023 Task 1: ``<root>/<region>/<patient>/{ct,mr,mask}.nii.gz`` for
  regions ``brain`` and ``pelvis`` (modality conversion CT→MR and MR→CT on axial slices).

Volumes are sliced by anatomy: ``data.images`` reorients each NIfTI to nibabel's closest
canonical orientation (RAS+) before taking axial slices, so one anatomy stored with another
affine gives the same images (docs/generation.md, "Orientation").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from healthbench.core.catalog import LOADERS, SAMPLE_BUILDERS
from healthbench.data.options import Option, declare_options
from healthbench.data.paths import (LoadedDataset, UnsafePathError, declare_files,
                                    require_dir, resolve_inside)
from healthbench.data.images import is_image_file, nifti_axial_depth
from healthbench.core.types import ImageSource, Sample, SampleError

#: The example instructions of the HealthGPT paper (arXiv 2502.09838) and its README.
INSTRUCTIONS = {
    "reconstruction": "Reconstruct the image.",
    "super_resolution": "Could you improve the quality of this MRI image?",
    "ct2mr": "I need a version of this CT representation in MRI.",
    "mr2ct": "Transform the MRI display into a CT image.",
}
CT_WINDOW = (-1024.0, 3000.0)  # the SynthRAD2023 dynamic range, used to show CT to models


#: The ``slices`` option (see ``select_slices``).
SLICE_FIELDS = {"mode": Option((str,), choices=("middle", "every")), "step": Option((int,)),
                "within": Option((list,), items=(int, float))}


def select_slices(depth: int, rule: dict[str, Any]) -> list[int]:
    """Axial slice indices by a stated rule.

    ``{mode: middle}`` → the middle slice; ``{mode: all}`` → every slice (what ``per_volume``
    scoring needs); ``{mode: every, step: k, within: [a, b]}`` → every k-th
    slice between fractions a and b of the depth (default the central 40%: [0.3, 0.7]).
    """
    mode = rule.get("mode", "middle")
    if mode == "middle":
        return [depth // 2]
    if mode == "all":
        return list(range(depth))
    if mode == "every":
        lo, hi = rule.get("within", [0.3, 0.7])
        step = int(rule.get("step", 1))
        return list(range(int(depth * lo), max(int(depth * lo) + 1, int(np.ceil(depth * hi))),
                          step))
    raise ValueError(f"unknown slice rule mode {mode!r} (middle | all | every)")


def _nifti_depth(path: Path) -> int:
    """Axial slices by anatomy (the affine's superior axis), as ``data.images`` slices them."""
    return nifti_axial_depth(path)


#: A file found by walking: (its path, its path relative to the root, why it is refused or None).
Walked = tuple[Path, Path, str | None]


def _image_files(root: Path) -> list[Walked]:
    """Every image file under ``root`` (recursively), in sorted order."""
    require_dir(root, "image folder", "a folder of PNG/JPEG/DICOM/NIfTI images")
    return [_walked(root, path)
            for path in sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))]


def _walked(root: Path, path: Path) -> Walked:
    """A file found by walking the folder that resolves outside the data root (a symlink, or a
    file under a symlinked folder, pointing out) is refused like a row's '..' path in the other
    loaders: recorded as that file's error, never read (nor listed among the files)."""
    rel = path.relative_to(root)
    try:
        resolve_inside(root, rel, f"{root.name}: {rel}")
    except UnsafePathError as exc:
        return path, rel, str(exc)
    return path, rel, None


def list_image_folder(root: Path, slices: dict[str, Any] | None = None,
                      modality: str | None = None) -> list[Path]:
    """The files ``load_image_folder`` reads (its ``files``), without reading them."""
    return [path for path, _, refused in _image_files(root) if refused is None]


@LOADERS.register("image_folder")
@declare_options(slices=Option((dict, type(None)), fields=SLICE_FIELDS),
                 modality=Option((str, type(None))))
@declare_files(list_image_folder)
def load_image_folder(root: Path, slices: dict[str, Any] | None = None,
                      modality: str | None = None) -> LoadedDataset:
    """Every image under ``root`` (recursively), in sorted order; volumes give axial slices.

    The id is the relative path (plus ``#slice`` for volumes); the modality comes from the first
    folder level (``CT/``, ``MR/``…) unless ``modality`` is given.
    """
    rule = slices or {"mode": "middle"}
    dataset = LoadedDataset()
    for path, rel, refused in _image_files(root):
        meta = {"modality": modality or (rel.parts[0] if len(rel.parts) > 1 else "unknown"),
                "format": _format(path), "file": str(rel)}
        if refused is not None:
            dataset.items.append(SampleError(str(rel), str(rel), refused, meta))
            continue
        dataset.files.append(path)
        frames: Sequence[int | None] = [None]
        if path.name.lower().endswith((".nii", ".nii.gz")):
            try:
                frames = select_slices(_nifti_depth(path), rule)
            except Exception as exc:
                dataset.items.append(SampleError(str(rel), str(path), f"unreadable volume: "
                                                 f"{exc}", meta))
                continue
        for frame in frames:
            src = ImageSource(path=path, frame=frame)
            sample_id = str(rel) if frame is None else f"{rel}#{frame}"
            dataset.items.append(Sample(id=sample_id, question=INSTRUCTIONS["reconstruction"],
                                        images=(src,), target=src,
                                        meta={**meta, "slice": frame}))
    return dataset


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".dcm", ".dicom")):
        return "dicom"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    return path.suffix.lower().lstrip(".")


#: IXI's sequences and how its files name them (``IXI002-Guys-0828-T1.nii.gz``).
IXI_SEQUENCES = ("T1", "T2", "PD", "MRA")


def _ixi_volumes(root: Path, sequence: str) -> list[Walked]:
    """The volumes of one IXI sequence under ``root`` (any subfolder), in sorted order."""
    if sequence not in IXI_SEQUENCES:
        raise ValueError(f"IXI sequence must be one of {', '.join(IXI_SEQUENCES)}, got "
                         f"{sequence!r}")
    pattern = f"IXI*-{sequence}.nii.gz"
    require_dir(root, "IXI", f"IXI brain MRI volumes named {pattern} (any subfolder)")
    volumes = sorted(root.rglob(pattern))
    if not volumes:
        raise FileNotFoundError(f"no {pattern} volumes under {root} (IXI names its files "
                                f"IXI<id>-<site>-<number>-{sequence}.nii.gz)")
    return [_walked(root, path) for path in volumes]


def list_ixi(root: Path, factor: int = 4, slices: dict[str, Any] | None = None,
             sequence: str = "T1") -> list[Path]:
    """The volumes ``load_ixi`` reads (its ``files``), without reading them."""
    return [path for path, _, refused in _ixi_volumes(root, sequence) if refused is None]


@LOADERS.register("ixi")
@declare_options(factor=Option((int,)), slices=Option((dict, type(None)), fields=SLICE_FIELDS),
                 sequence=Option((str,), choices=IXI_SEQUENCES))
@declare_files(list_ixi)
def load_ixi(root: Path, factor: int = 4, slices: dict[str, Any] | None = None,
             sequence: str = "T1") -> LoadedDataset:
    """IXI volumes of one sequence (``IXI*-T1.nii.gz`` by default; ``sequence: T2`` / ``PD`` /
    ``MRA``), never any other NIfTI under the folder; input = slice down-scaled ×factor
    (bicubic), reference = the slice."""
    volumes = _ixi_volumes(root, sequence)
    rule = slices or {"mode": "middle"}
    dataset = LoadedDataset()
    for path, rel, refused in volumes:
        meta = {"modality": "MR", "sequence": sequence, "file": str(rel), "factor": factor}
        if refused is not None:
            dataset.items.append(SampleError(str(rel), str(rel), refused, meta))
            continue
        dataset.files.append(path)
        try:
            frames = select_slices(_nifti_depth(path), rule)
        except Exception as exc:
            dataset.items.append(SampleError(str(rel), str(path), f"unreadable volume: {exc}",
                                             meta))
            continue
        for frame in frames:
            reference = ImageSource(path=path, frame=frame)
            low = ImageSource(path=path, frame=frame, downscale=factor)
            dataset.items.append(Sample(id=f"{rel}#{frame}",
                                        question=INSTRUCTIONS["super_resolution"],
                                        images=(low,), target=reference,
                                        meta={**meta, "slice": frame}))
    return dataset


#: ``mask:`` options of the SynthRAD2023 loader: the patient's body mask, or none (whole slice).
MASK_POLICIES = ("body", "none")


def _nonempty_slices(mask: Path) -> np.ndarray:
    """Per axial slice (counted as ``data.images`` counts them), whether the mask has a voxel."""
    import nibabel as nib

    from healthbench.data.images import axial_axis

    img = nib.load(str(mask))
    axis, flipped = axial_axis(img.affine)
    data = np.asarray(img.dataobj)
    while data.ndim > 3:
        data = data[..., 0]
    filled = np.moveaxis(data != 0, axis, 0).reshape(data.shape[axis], -1).any(axis=1)
    return filled[::-1] if flipped else filled


class _Patient(NamedTuple):
    """One SynthRAD2023 patient folder as found by listing it (no volume read)."""

    region: str
    folder: Path
    wanted: tuple[Path, ...]  # the volumes the mask policy needs
    missing: list[str]  # those of them absent, relative to the root
    refused: tuple[Path, str] | None  # the first volume resolving outside the root, and why


def _synthrad_patients(root: Path, direction: str, regions: Sequence[str],
                       mask: str) -> list[_Patient]:
    """The patient folders of the requested regions, in loading order."""
    if direction not in ("mr2ct", "ct2mr"):
        raise ValueError(f"direction must be mr2ct or ct2mr, got {direction!r}")
    if mask not in MASK_POLICIES:
        raise ValueError(f"mask must be body or none, got {mask!r}")
    require_dir(root, "SynthRAD2023", "Task1/<region>/<patient>/{ct,mr,mask}.nii.gz with regions "
                "brain and pelvis (point dataset.path at the Task1 folder)")
    found = []
    for region in regions:
        for patient in sorted(p for p in (root / region).glob("*") if p.is_dir()):
            ct, mr, body = (patient / f"{n}.nii.gz" for n in ("ct", "mr", "mask"))
            wanted = (ct, mr, body) if mask == "body" else (ct, mr)
            refused = None
            for volume in (ct, mr, body):
                why = _walked(root, volume)[2] if volume.exists() or volume.is_symlink() else None
                if why is not None:
                    refused = (volume, why)
                    break
            found.append(_Patient(region, patient, wanted,
                                  [str(p.relative_to(root)) for p in wanted if not p.exists()],
                                  refused))
    return found


def _no_patients(root: Path, regions: Sequence[str]) -> FileNotFoundError:
    return FileNotFoundError(f"no patients under {root}/<region>/ for regions {list(regions)}")


def list_synthrad(root: Path, direction: str = "mr2ct",
                  regions: Sequence[str] = ("brain", "pelvis"),
                  slices: dict[str, Any] | None = None, mask: str = "body") -> list[Path]:
    """The volumes ``load_synthrad`` reads (its ``files``), without reading them. (Where every
    patient's slice selection comes out empty the loader raises after reading; no run of such
    data can have finished, so this list cannot wrongly match one.)"""
    patients = _synthrad_patients(root, direction, regions, mask)
    if not patients:
        raise _no_patients(root, regions)
    return [volume for p in patients if p.refused is None and not p.missing
            for volume in p.wanted]


@LOADERS.register("synthrad2023")
@declare_options(direction=Option((str,), choices=("mr2ct", "ct2mr")),
                 regions=Option((list,), items=(str,), choices=("brain", "pelvis")),
                 slices=Option((dict, type(None)), fields=SLICE_FIELDS),
                 mask=Option((str,), choices=MASK_POLICIES))
@declare_files(list_synthrad)
def load_synthrad(root: Path, direction: str = "mr2ct",
                  regions: Sequence[str] = ("brain", "pelvis"),
                  slices: dict[str, Any] | None = None, mask: str = "body") -> LoadedDataset:
    """Paired CT/MR per patient; input and reference are the same axial slice of each volume.

    CT is shown to models through the SynthRAD2023 window [-1024, 3000] HU; MR through its own
    min..max. The body mask (``mask.nii.gz``) travels in meta for the synthrad protocol, which
    scores inside it, as the challenge does. A patient without it is a per-sample error naming
    the file, unless ``mask: none`` (whole slices, recorded as ``mask_policy`` in each sample's
    meta). A slice whose mask is empty is skipped, recorded as an error saying why, so every
    metric of the task counts the same samples.
    """
    patients = _synthrad_patients(root, direction, regions, mask)
    rule = slices or {"mode": "middle"}
    dataset = LoadedDataset()
    for region, patient, wanted, missing, refused in patients:
        ct, mr, body = (patient / f"{n}.nii.gz" for n in ("ct", "mr", "mask"))
        rel = f"{region}/{patient.name}"
        meta = {"region": region, "patient": patient.name, "direction": direction,
                "modality": "CT" if direction == "mr2ct" else "MR", "volume": rel,
                "mask_policy": mask}
        if refused is not None:
            volume_rel = str(refused[0].relative_to(root))
            dataset.items.append(SampleError(volume_rel, volume_rel, refused[1], meta))
            continue
        if missing:
            dataset.items.append(SampleError(rel, str(patient), f"missing {', '.join(missing)}"
                                             + (" (or set the loader option mask: none)"
                                                if str(body.relative_to(root)) in missing
                                                else ""), meta))
            continue
        dataset.files += list(wanted)
        try:
            depth = _nifti_depth(ct)
            if _nifti_depth(mr) != depth:
                raise ValueError(f"ct has {depth} slices but mr has {_nifti_depth(mr)}")
            filled = _nonempty_slices(body) if mask == "body" else np.ones(depth, bool)
            if filled.size != depth:
                raise ValueError(f"ct has {depth} slices but mask has {filled.size}")
            frames = select_slices(depth, rule)
        except Exception as exc:
            dataset.items.append(SampleError(rel, str(patient), f"unreadable pair: {exc}",
                                             meta))
            continue
        for frame in frames:
            sample_meta = {**meta, "slice": frame, "depth": depth, "selected": len(frames),
                           "mask": str(body) if mask == "body" else None}
            if not filled[frame]:
                dataset.items.append(SampleError(
                    f"{rel}#{frame}", str(body), f"skipped: {body.relative_to(root)} is "
                    f"empty on slice {frame} (nothing to score inside the body mask)",
                    sample_meta))
                continue
            ct_src = ImageSource(path=ct, frame=frame, window=CT_WINDOW)
            mr_src = ImageSource(path=mr, frame=frame)
            source, target = (mr_src, ct_src) if direction == "mr2ct" else (ct_src, mr_src)
            dataset.items.append(Sample(
                id=f"{rel}#{frame}", question=INSTRUCTIONS[direction], images=(source,),
                target=target, meta=sample_meta))
    if not dataset.items:
        raise _no_patients(root, regions)
    return dataset


# ---------------------------------------------------------------------------------------------
# Bundled sample for reconstruction: real images in their native formats (DICOM from pydicom,
# a NIfTI volume from nilearn's MNI152 template, PNG from scikit-image), nothing committed.

@SAMPLE_BUILDERS.register("reconstruction_sample")
def build_reconstruction_sample(root: Path) -> None:
    import shutil

    import nibabel as nib
    from pydicom.data import get_testdata_file

    from healthbench.data.bundled import BUNDLED_IMAGES, save_png

    for modality, name in (("CT", "CT_small.dcm"), ("MR", "MR_small.dcm")):
        target = root / modality / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(get_testdata_file(name), target)
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=2)
    volume = np.asarray(template.get_fdata(), dtype=np.float32)
    (root / "MR").mkdir(exist_ok=True)
    nib.save(nib.Nifti1Image(volume, template.affine), root / "MR" / "mni152_t1_2mm.nii.gz")
    wanted = {"cr_chest": "X-Ray", "fundus_retina": "Fundus", "us_lymph_node": "US"}
    for image in BUNDLED_IMAGES:
        if image.key in wanted:
            save_png(image, root / wanted[image.key] / f"{image.key}.png")
    (root / "SOURCES.json").write_text(json.dumps(
        {"CT/CT_small.dcm": "pydicom test file", "MR/MR_small.dcm": "pydicom test file",
         "MR/mni152_t1_2mm.nii.gz": "nilearn MNI152 T1 template, 2 mm",
         **{f"{m}/{k}.png": "see healthbench.data.bundled" for k, m in wanted.items()}},
        indent=1))


@SAMPLE_BUILDERS.register("super_resolution_sample")
def build_super_resolution_sample(root: Path) -> None:
    """An IXI-like folder holding the MNI152 T1 template (the only real brain MRI volume that
    ships in a PyPI package), named to match the loader's ``IXI*-T1.nii.gz``."""
    import nibabel as nib
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=1)
    folder = root / "IXI-T1"
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(template.get_fdata(), dtype=np.float32),
                             template.affine), folder / "IXI-MNI152-T1.nii.gz")
