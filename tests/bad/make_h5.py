#!/usr/bin/python3
"""Writes a small valid dataset (good.h5) and one malformed variant per case into a folder.

Usage: make_h5.py DIR. The valid file follows docs/format.md: 30 regression samples (20 train,
5 valid, 5 test) with two features modalities, text [30, 4, 3] and audio [30, 1, 2]. Each
variant changes one thing, so the error it must produce is known (tests/bad/cases.tsv).
Needs Debian's python3-h5py and python3-numpy.
"""
import os
import sys

import h5py
import numpy as np

N = 30


def write_good(path, **change):
    """Writes the valid layout; keyword arguments replace or drop (None) single parts."""
    rng = np.random.default_rng(1)
    parts = {
        "format": "euar-bench",
        "format_version": 1,
        "task": "regression",
        "modalities": ["text", "audio"],
        "ids": ["s%03d" % i for i in range(N)],
        "split": np.array([0] * 20 + [1] * 5 + [2] * 5, dtype=np.uint8),
        "labels": rng.uniform(-3, 3, N).astype(np.float32),
        "text": rng.normal(size=(N, 4, 3)).astype(np.float32),
        "text_lengths": np.full(N, 4, dtype=np.int32),
        "audio": rng.normal(size=(N, 1, 2)).astype(np.float32),
        "audio_lengths": np.ones(N, dtype=np.int32),
        "available": np.ones(N, dtype=np.uint8),
        "text_kind": "features",
    }
    parts.update(change)
    with h5py.File(path, "w") as f:
        for key in ("format", "format_version", "task"):
            if parts[key] is not None:
                f.attrs[key] = parts[key]
        f.attrs["name"] = "tiny"
        if parts["modalities"] is not None:
            f.attrs["modalities"] = parts["modalities"]
        if parts["ids"] is not None:
            f["samples/id"] = np.array(parts["ids"], dtype=h5py.string_dtype())
        if parts["split"] is not None:
            f["samples/split"] = parts["split"]
        if parts["labels"] is not None:
            f["labels"] = parts["labels"]
        for name in ("text", "audio"):
            if parts[name] is None:
                continue
            g = f.create_group("modalities/" + name)
            g.attrs["kind"] = parts["text_kind"] if name == "text" else "features"
            g["data"] = parts[name]
            if parts[name + "_lengths"] is not None:
                g["lengths"] = parts[name + "_lengths"]
            g["available"] = parts["available"]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    good = os.path.join(out, "good.h5")
    write_good(good)
    data = open(good, "rb").read()
    with open(os.path.join(out, "truncated.h5"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(out, "header-only.h5"), "wb") as f:
        f.write(data[:512])
    open(os.path.join(out, "empty.h5"), "wb").close()
    with open(os.path.join(out, "text.h5"), "w") as f:
        f.write("sample,label\ns1,0.5\n")

    labels = np.linspace(-2, 2, N).astype(np.float32)
    text = np.zeros((N, 4, 3), dtype=np.float32)
    variants = {
        "wrong-format": {"format": "other-format"},
        "newer-version": {"format_version": 2},
        "no-version": {"format_version": None},
        "bad-task": {"task": "ranking"},
        "no-labels": {"labels": None},
        "no-ids": {"ids": None},
        "no-text-group": {"text": None},
        "short-labels": {"labels": labels[:-1]},
        "labels-2d": {"labels": labels.reshape(N, 1)},
        "labels-float64": {"labels": labels.astype(np.float64)},
        "labels-string": {"labels": np.array([str(v) for v in labels], dtype=h5py.string_dtype())},
        "labels-nan": {"labels": np.where(np.arange(N) == 7, np.nan, labels).astype(np.float32)},
        "labels-inf": {"labels": np.where(np.arange(N) == 3, np.inf, labels).astype(np.float32)},
        "labels-range": {"labels": np.where(np.arange(N) == 2, 5.0, labels).astype(np.float32)},
        "text-nan": {"text": np.where(np.arange(N * 12).reshape(N, 4, 3) == 40, np.nan,
                                      text).astype(np.float32)},
        "text-2d": {"text": text.reshape(N, 12)},
        "text-int": {"text": text.astype(np.int32)},
        "text-rows": {"text": text[:-2]},
        "lengths-over": {"text_lengths": np.full(N, 9, dtype=np.int32)},
        "lengths-missing": {"text_lengths": None},
        "empty-test": {"split": np.array([0] * 25 + [1] * 5, dtype=np.uint8)},
        "split-value": {"split": np.array([0] * 20 + [1] * 5 + [2] * 4 + [7], dtype=np.uint8)},
        "duplicate-ids": {"ids": ["s%03d" % (i if i != 9 else 8) for i in range(N)]},
        "empty-id": {"ids": ["s%03d" % i if i != 4 else "" for i in range(N)]},
        "unknown-modality": {"modalities": ["text", "audio", "video"]},
        "no-modalities": {"modalities": []},
        "bad-kind": {"text_kind": "waveform"},
    }
    for name, change in variants.items():
        write_good(os.path.join(out, name + ".h5"), **change)
    write_checkpoints(out)


def write_checkpoint(path, format_name="euar-bench-checkpoint", version=1, fingerprint=1):
    """Writes a checkpoint in the layout of core/checkpoint.c that no real run can use."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = format_name
        f.attrs["format_version"] = np.int32(version)
        f.attrs["fingerprint"] = np.uint64(fingerprint)
        for key in ("epoch", "step", "selected_epoch"):
            f.attrs[key] = np.int32(1)
        f.attrs["best"] = 0.5
        f.attrs["time_s"] = 1.0
        for key in ("value", "adam_m", "adam_v", "best_params"):
            f[key] = np.zeros(4, dtype=np.float32)
        f["curve"] = np.zeros((1, 10))


def write_checkpoints(out):
    write_checkpoint(os.path.join(out, "ckpt-newer.h5"), version=2)
    write_checkpoint(os.path.join(out, "ckpt-other-run.h5"))
    write_checkpoint(os.path.join(out, "ckpt-format.h5"), format_name="euar-bench")
    with open(os.path.join(out, "ckpt-text.h5"), "w") as f:
        f.write("not a checkpoint\n")


if __name__ == "__main__":
    main()
