#!/usr/bin/python3
"""Convert MMSA and MAG-BERT/MIB sentiment pickles into the euar-bench HDF5 format.

The output has the layout of docs/format.md, written the way datasets/h5_write.c writes it.
`euar data import-pickle` runs this script; it also runs on its own:

    /usr/bin/python3 datasets/import_pickle.py --format mmsa IN.pkl --out OUT.h5

Only Debian's python3-numpy and python3-h5py are needed (`make deps` installs them).
docs/import.md describes both input layouts and every choice made in the conversion.
Exit status: 0 on success, 1 on bad input (one message on stderr, no output file).
"""

import argparse
import importlib
import os
import pickle
import sys
import time

try:
    import numpy as np
    import h5py
except ImportError as missing:
    sys.stderr.write(
        f"euar: error: the Python module '{missing.name}' is not installed for "
        f"{sys.executable}; install Debian's python3-numpy and python3-h5py "
        "(apt-get install python3-numpy python3-h5py, or make deps)\n")
    sys.exit(1)

FORMAT_NAME = "euar-bench"
FORMAT_VERSION = 1
LABEL_MAX = 3.0          # sentiment scale of CMU-MOSI and CMU-MOSEI: -3 to 3
CHUNK_FEATURES = 64      # samples per HDF5 chunk of features data, as in h5_write.c
CHUNK_SMALL = 1024       # samples per HDF5 chunk of tokens data
WRITE_BLOCK = 1024       # samples converted to float32 at a time while writing
NAME_MAX = 63            # maximum length of a dataset name in bytes (reader limit)
SPLIT_NAMES = ("train", "valid", "test")
TOKEN_PAD, TOKEN_BLANK, TOKEN_UNKNOWN = 0, 1, 2


class InputError(Exception):
    """Bad input: the message names the file, the key and the value, and what to do."""


# Warnings wait until the conversion has succeeded, so that a failed import prints only its
# error.
pending_warnings = []


def warn(message):
    pending_warnings.append(message)


def flush_warnings():
    for message in pending_warnings:
        sys.stderr.write(f"euar: warning: {message}\n")
    pending_warnings.clear()


# ---------------------------------------------------------------------------------------------
# Safe loading

# The pickles come from the internet (the MMSA and MAG-BERT/MIB downloads), and a plain
# pickle.load calls whatever function a file names, so a crafted file could run any code.
# This unpickler resolves only the names that numpy arrays, numpy scalars and builtin
# containers need and rejects a file that names anything else before calling it.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
}


class SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        # latin1 turns the byte strings of Python 2 pickles into str, which numpy needs to
        # rebuild the arrays of such pickles. Python 3 pickles do not use it.
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module, name):
        # Protocols 0 to 2 name the builtins by their Python 2 module, and numpy 2 writes
        # numpy._core where numpy 1 has numpy.core.
        if module == "__builtin__":
            module = "builtins"
        canonical = module
        if module == "numpy._core" or module.startswith("numpy._core."):
            canonical = "numpy.core" + module[len("numpy._core"):]
        if (canonical, name) not in ALLOWED_GLOBALS:
            raise InputError(
                f"{self.path}: the pickle refers to '{module}.{name}', which is not a numpy "
                "array or a builtin container; the importer loads nothing else, so check "
                "that the file is an MMSA or MAG-BERT/MIB pickle from a source you trust")
        for candidate in (module, canonical, module.replace("numpy.core", "numpy._core", 1)):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise InputError(f"{self.path}: this numpy cannot resolve '{module}.{name}'; "
                         "convert the pickle with a numpy of the same major version")


def load_pickle(path):
    """Return the object stored in the pickle at `path`, loaded with SafeUnpickler."""
    try:
        handle = open(path, "rb")
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror}; check the path") from None
    with handle:
        try:
            return SafeUnpickler(handle, path).load()
        except InputError:
            raise
        except EOFError:
            raise InputError(f"{path}: the pickle is truncated (the file ends before the "
                             "pickle does); download or copy it again") from None
        except pickle.UnpicklingError as e:
            if "truncated" in str(e):
                raise InputError(f"{path}: the pickle is truncated ({e}); download or copy "
                                 "it again") from None
            raise InputError(f"{path}: not a pickle ({e}); pass an MMSA or MAG-BERT/MIB "
                             ".pkl file") from None
        except MemoryError:
            raise InputError(f"{path}: out of memory while loading the pickle; run on a "
                             "machine with more memory") from None
        except Exception as e:  # a damaged stream fails in many ways inside pickle and numpy
            raise InputError(f"{path}: not a valid pickle ({type(e).__name__}: {e}); "
                             "download or copy it again") from None


# ---------------------------------------------------------------------------------------------
# The converted dataset, independent of the source format

class Modality:
    """One modality of all N samples, stored as one array per split (source order)."""

    def __init__(self, name, kind, parts, lengths, vocabulary=None):
        self.name = name
        self.kind = kind                  # "features" or "tokens"
        self.parts = parts                # per split: [n_s, T, D] float or [n_s, T] int32
        self.lengths = lengths            # int32 [N]
        self.available = (lengths > 0).astype(np.uint8)
        self.vocabulary = vocabulary      # tokens only: list of V strings


class Converted:
    def __init__(self, source_format, split_names):
        self.source_format = source_format
        self.split_names = split_names    # source name of train, valid, test
        self.ids = []                     # N strings
        self.split = None                 # uint8 [N]
        self.source_index = None          # int32 [N], position within the source split
        self.labels = None                # float64 [N], as in the source
        self.modalities = []
        self.extras = {}                  # /source/<key> arrays, ignored by the reader


def as_id(value, where):
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where}: sample id {value!r} is not UTF-8; fix the id") from None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        value = str(int(value))
    if not isinstance(value, str):
        raise InputError(f"{where}: sample id {value!r} is a {type(value).__name__}, not a "
                         "string; fix the ids of the pickle")
    if value == "":
        raise InputError(f"{where}: empty sample id; every sample needs a non-empty id")
    return str(value)


def check_ids(path, conv, positions):
    """Raise on a duplicate id, naming both positions (split[index])."""
    seen = {}
    for i, sample_id in enumerate(conv.ids):
        if sample_id in seen:
            raise InputError(f"{path}: sample id '{sample_id}' appears twice, at "
                             f"{positions[seen[sample_id]]} and {positions[i]}; ids must be "
                             "unique across all splits, so rename or drop one")
        seen[sample_id] = i


def check_labels(path, conv):
    bad = np.flatnonzero(~np.isfinite(conv.labels))
    if bad.size:
        raise InputError(f"{path}: label of sample '{conv.ids[bad[0]]}' is "
                         f"{conv.labels[bad[0]]}; labels must be finite, so fix or drop the "
                         f"sample ({bad.size} such label{'s' if bad.size > 1 else ''})")
    outside = np.flatnonzero(np.abs(conv.labels) > LABEL_MAX)
    if outside.size:
        worst = float(np.max(np.abs(conv.labels[outside])))
        warn(f"{path}: {outside.size} label{'s' if outside.size > 1 else ''} outside "
             f"[-3, 3] (largest magnitude {worst:g}, the first in sample "
             f"'{conv.ids[outside[0]]}') clipped to the range; /samples/source_label keeps "
             "the original values")


def lengths_from(path, split, key, values, n, steps, ids, offset):
    """Check per-sample lengths from the source; clamp those beyond `steps` and warn."""
    where = f"{path}: {split}: {key}"
    try:
        lengths = np.asarray(values)
    except Exception as e:
        raise InputError(f"{where}: not an array of lengths ({e})") from None
    if lengths.ndim != 1 or lengths.shape[0] != n:
        raise InputError(f"{where}: shape {lengths.shape}, expected [{n}] (one length per "
                         "sample); the split is inconsistent, download the pickle again")
    if lengths.dtype.kind not in "iuf" or (lengths.dtype.kind == "f" and (
            not np.all(np.isfinite(lengths)) or np.any(lengths != np.round(lengths)))):
        raise InputError(f"{where}: lengths must be integers, found dtype {lengths.dtype}; "
                         "fix the lengths of the pickle")
    lengths = lengths.astype(np.int64)
    negative = np.flatnonzero(lengths < 0)
    if negative.size:
        i = negative[0]
        raise InputError(f"{where}: length {lengths[i]} of sample '{ids[offset + i]}' is "
                         "negative; fix the lengths of the pickle")
    over = np.flatnonzero(lengths > steps)
    if over.size:
        i = over[0]
        warn(f"{where}: {over.size} length{'s' if over.size > 1 else ''} beyond the padded "
             f"length {steps} clamped to it (the first in sample '{ids[offset + i]}': "
             f"{lengths[i]})")
    return np.minimum(lengths, steps).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# MMSA: {"train"|"valid"|"test": {"text": [N, T, 768], "audio": [N, Ta, Da], ...}}

MMSA_SPLITS = ("train", "valid", "test")
MMSA_FEATURES = (("text", "text"), ("audio", "audio"), ("vision", "vision"))


def mmsa_array(path, split, part, key, n_expected):
    where = f"{path}: {split}: {key}"
    if key not in part:
        raise InputError(f"{where}: key not found (the split has {sorted(part)}); pass an "
                         "MMSA pickle with text, audio, vision, regression_labels and id")
    try:
        array = np.asarray(part[key])
    except Exception as e:
        raise InputError(f"{where}: not an array ({e})") from None
    if n_expected is not None and (array.ndim == 0 or array.shape[0] != n_expected):
        raise InputError(f"{where}: {array.shape[0] if array.ndim else 0} samples but "
                         f"regression_labels has {n_expected}; the split is inconsistent, "
                         "download the pickle again")
    return array


def convert_mmsa(path, data):
    if not isinstance(data, dict):
        raise InputError(f"{path}: the pickle contains a {type(data).__name__}, expected a dict "
                         "with keys train, valid and test (an MMSA pickle)")
    for split in MMSA_SPLITS:
        if split not in data:
            hint = "; it looks like a MAG-BERT/MIB pickle, pass --format mib" \
                if "dev" in data else ""
            raise InputError(f"{path}: split '{split}' not found (keys: "
                             f"{sorted(map(str, data))}){hint}")
    for split in MMSA_SPLITS:
        if not isinstance(data[split], dict):
            raise InputError(f"{path}: {split}: a {type(data[split]).__name__}, expected a "
                             "dict of arrays (text, audio, vision, regression_labels, id)")
    conv = Converted("mmsa", list(MMSA_SPLITS))
    positions, labels, splits, index = [], [], [], []
    sizes = []
    for s, split in enumerate(MMSA_SPLITS):
        part = data[split]
        y = mmsa_array(path, split, part, "regression_labels", None)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.dtype.kind not in "iuf":
            raise InputError(f"{path}: {split}: regression_labels: shape {y.shape} dtype "
                             f"{y.dtype}, expected numbers [N]")
        n = y.shape[0]
        if n == 0:
            raise InputError(f"{path}: {split}: no samples; every split needs at least one")
        ids = mmsa_array(path, split, part, "id", n)
        if ids.ndim != 1:
            raise InputError(f"{path}: {split}: id: shape {ids.shape}, expected [{n}]")
        for i in range(n):
            conv.ids.append(as_id(ids[i], f"{path}: {split}: id[{i}]"))
            positions.append(f"{split}[{i}]")
        labels.append(y.astype(np.float64))
        splits.append(np.full(n, s, np.uint8))
        index.append(np.arange(n, dtype=np.int32))
        sizes.append(n)
    conv.labels = np.concatenate(labels)
    conv.split = np.concatenate(splits)
    conv.source_index = np.concatenate(index)
    check_ids(path, conv, positions)

    for name, key in MMSA_FEATURES:
        parts, lengths = [], []
        offset = 0
        for s, split in enumerate(MMSA_SPLITS):
            array = mmsa_array(path, split, data[split], key, sizes[s])
            if array.ndim != 3 or array.dtype.kind not in "iuf":
                raise InputError(f"{path}: {split}: {key}: shape {array.shape} dtype "
                                 f"{array.dtype}, expected numbers [N, T, D]")
            if parts and array.shape[2] != parts[0].shape[2]:
                raise InputError(f"{path}: {split}: {key}: features are {array.shape[2]} wide "
                                 f"but {parts[0].shape[2]} in {MMSA_SPLITS[0]}; every split "
                                 "must have the same feature width")
            steps = array.shape[1]
            if name == "text":
                split_lengths = mmsa_text_lengths(path, split, data[split], sizes[s], steps,
                                                  conv.ids, offset)
            elif key + "_lengths" in data[split]:
                split_lengths = lengths_from(path, split, key + "_lengths",
                                             data[split][key + "_lengths"], sizes[s], steps,
                                             conv.ids, offset)
            else:
                # Without lengths (the aligned MMSA pickles) every step counts as valid.
                split_lengths = np.full(sizes[s], steps, np.int32)
            parts.append(array)
            lengths.append(split_lengths)
            offset += sizes[s]
        conv.modalities.append(Modality(name, "features", parts, np.concatenate(lengths)))

    # Token ids and raw sentences have no modality in the format; they are copied to
    # /source so that nothing of the pickle's text is lost.
    bert = [data[split].get("text_bert") for split in MMSA_SPLITS]
    if all(b is not None for b in bert):
        arrays = [np.asarray(b) for b in bert]
        if len({a.shape[1:] for a in arrays}) == 1:
            conv.extras["text_bert"] = np.concatenate(arrays).astype(np.int32)
        else:
            warn(f"{path}: text_bert has shapes {[a.shape for a in arrays]} in train, valid "
                 "and test, so it is not copied to /source/text_bert")
    raw = [data[split].get("raw_text") for split in MMSA_SPLITS]
    if all(r is not None and len(r) == n for r, n in zip(raw, sizes)):
        conv.extras["raw_text"] = [str(t) for r in raw for t in r]
    return conv


def mmsa_text_lengths(path, split, part, n, steps, ids, offset):
    """Return the lengths of the text features. With text_bert they are the sums of its
    attention mask, because BERT features of padding tokens are not zero. Without it every
    step counts."""
    if "text_bert" not in part:
        return np.full(n, steps, np.int32)
    where = f"{path}: {split}: text_bert"
    bert = np.asarray(part["text_bert"])
    if bert.ndim != 3 or bert.shape[0] != n or bert.shape[1] != 3:
        raise InputError(f"{where}: shape {bert.shape}, expected [{n}, 3, T] (token ids, "
                         "attention mask, segment ids); the split is inconsistent")
    if bert.dtype.kind not in "iuf" or np.any(bert != np.round(bert)):
        raise InputError(f"{where}: values must be integers (token ids and masks), found "
                         f"dtype {bert.dtype}")
    mask = bert[:, 1, :]
    bad = np.flatnonzero(np.any((mask != 0) & (mask != 1), axis=1))
    if bad.size:
        raise InputError(f"{where}: the attention mask (text_bert[:, 1, :]) of sample "
                         f"'{ids[offset + bad[0]]}' has values other than 0 and 1")
    return lengths_from(path, split, "text_bert mask", mask.sum(axis=1), n, steps, ids, offset)


# ---------------------------------------------------------------------------------------------
# MAG-BERT/MIB: {"train"|"dev"|"test": [((words, visual, acoustic), label, segment), ...]}

MIB_SPLITS = ("train", "dev", "test")


def mib_sample(path, split, i, sample):
    """Unpack one sample; returns (words, visual, acoustic, label, segment)."""
    where = f"{path}: {split}[{i}]"
    if not isinstance(sample, (tuple, list)) or len(sample) != 3:
        raise InputError(f"{where}: expected ((words, visual, acoustic), label, segment), "
                         f"found a {type(sample).__name__}")
    inputs, label, segment = sample
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 3:
        raise InputError(f"{where}: expected (words, visual, acoustic) as the first item")
    segment = as_id(segment, f"{where}: segment")
    where = f"{path}: {split}[{i}] (segment '{segment}')"

    words, visual, acoustic = inputs
    words = list(words) if isinstance(words, (list, tuple, np.ndarray)) else None
    if words is None:
        raise InputError(f"{where}: words: expected a list of strings")
    for k, word in enumerate(words):
        if isinstance(word, bytes):
            word = word.decode("utf-8", errors="replace")
        if not isinstance(word, str):
            raise InputError(f"{where}: words[{k}] is {word!r}, not a string; this importer "
                             "needs the word strings of the MAG-BERT/MIB pickles, not word ids")
        words[k] = str(word)

    arrays = []
    for key, value in (("visual", visual), ("acoustic", acoustic)):
        try:
            array = np.asarray(value, dtype=np.float64)
        except Exception as e:
            raise InputError(f"{where}: {key}: not a numeric array ({e})") from None
        if array.size == 0 and not words:
            array = array.reshape(0, 0)   # a sample without words may store an empty list
        if array.ndim != 2:
            raise InputError(f"{where}: {key}: shape {array.shape}, expected [words, D]")
        if array.shape[0] != len(words):
            raise InputError(f"{where}: {len(words)} words but {key} has {array.shape[0]} "
                             "steps; the sample is inconsistent, download the pickle again")
        arrays.append(array)

    try:
        label = np.asarray(label, dtype=np.float64)
    except Exception as e:
        raise InputError(f"{where}: label: not a number ({e})") from None
    if label.size != 1:
        raise InputError(f"{where}: label has shape {label.shape}, expected one number")
    return words, arrays[0], arrays[1], float(label.reshape(-1)[0]), segment


def convert_mib(path, data, max_steps):
    if not isinstance(data, dict):
        raise InputError(f"{path}: the pickle contains a {type(data).__name__}, expected a dict "
                         "with keys train, dev and test (a MAG-BERT/MIB pickle)")
    for split in MIB_SPLITS:
        if split not in data:
            hint = "; it looks like an MMSA pickle, pass --format mmsa" \
                if "valid" in data else ""
            raise InputError(f"{path}: split '{split}' not found (keys: "
                             f"{sorted(map(str, data))}){hint}")
    for split in MIB_SPLITS:
        if not isinstance(data[split], (list, tuple)):
            raise InputError(f"{path}: {split}: a {type(data[split]).__name__}, expected a "
                             "list of ((words, visual, acoustic), label, segment)")
        if len(data[split]) == 0:
            raise InputError(f"{path}: {split}: no samples; every split needs at least one")

    conv = Converted("mib", list(MIB_SPLITS))
    samples, positions, labels, splits, index = [], [], [], [], []
    widths = {}
    for s, split in enumerate(MIB_SPLITS):
        for i, raw in enumerate(data[split]):
            words, visual, acoustic, label, segment = mib_sample(path, split, i, raw)
            for key, array in (("visual", visual), ("acoustic", acoustic)):
                if array.shape[0] == 0:
                    continue
                first = widths.setdefault(key, (array.shape[1], f"{split}[{i}]", segment))
                if array.shape[1] != first[0]:
                    raise InputError(
                        f"{path}: {split}[{i}] (segment '{segment}'): {key} is "
                        f"{array.shape[1]} wide but {first[0]} in {first[1]} (segment "
                        f"'{first[2]}'); every sample must have the same feature width")
            samples.append((words, visual, acoustic))
            conv.ids.append(segment)
            positions.append(f"{split}[{i}]")
            labels.append(label)
            splits.append(s)
            index.append(i)
    conv.labels = np.array(labels, np.float64)
    conv.split = np.array(splits, np.uint8)
    conv.source_index = np.array(index, np.int32)
    check_ids(path, conv, positions)
    for key in ("visual", "acoustic"):
        if key not in widths:
            raise InputError(f"{path}: every sample has 0 words, so the {key} width is "
                             "unknown; the pickle has no features to import")

    counts = np.array([len(words) for words, _, _ in samples], np.int64)
    steps = int(counts.max())
    if max_steps and steps > max_steps:
        truncated = np.flatnonzero(counts > max_steps)
        warn(f"{path}: {truncated.size} sample{'s' if truncated.size > 1 else ''} longer than "
             f"--max-steps {max_steps} words truncated to it (the longest has {steps} words, "
             f"sample '{conv.ids[int(np.argmax(counts))]}')")
        steps = max_steps
    if steps == 0:
        raise InputError(f"{path}: every sample has 0 words; the pickle has no features")
    lengths = np.minimum(counts, steps).astype(np.int32)

    vocabulary, tokens, unknown = mib_vocabulary(samples, conv.split, steps)
    if unknown:
        warn(f"{path}: {unknown} word{'s' if unknown > 1 else ''} of dev and test not in the "
             f"training vocabulary mapped to id {TOKEN_UNKNOWN} (<unk>)")
    sizes = [int(np.sum(conv.split == s)) for s in range(3)]
    bounds = np.cumsum([0] + sizes)
    text_parts = [tokens[bounds[s]:bounds[s + 1]] for s in range(3)]
    conv.modalities.append(Modality("text", "tokens", text_parts, lengths, vocabulary))
    for name, slot in (("audio", 2), ("vision", 1)):
        width = widths["acoustic" if slot == 2 else "visual"][0]
        parts = []
        for s in range(3):
            part = np.zeros((sizes[s], steps, width), np.float32)
            for j in range(sizes[s]):
                array = samples[bounds[s] + j][slot][:steps]
                if array.shape[0] > 0:
                    part[j, :array.shape[0]] = array
            parts.append(part)
        conv.modalities.append(Modality(name, "features", parts, lengths.copy()))
    return conv


def mib_vocabulary(samples, split, steps):
    """Build the word vocabulary from the training split in order of first appearance.
    Ids 0, 1 and 2 are padding, the blank token and unknown words. Returns the vocabulary,
    the token ids [N, steps] and the number of dev and test words mapped to unknown."""
    vocabulary = ["<pad>", "<blank>", "<unk>"]
    ids = {}
    for (words, _, _), s in zip(samples, split):
        if s != 0:
            continue
        for word in words[:steps]:
            if word not in ids:
                ids[word] = len(vocabulary)
                vocabulary.append(word)
    tokens = np.zeros((len(samples), steps), np.int32)
    unknown = 0
    for i, (words, _, _) in enumerate(samples):
        for t, word in enumerate(words[:steps]):
            token = ids.get(word, TOKEN_UNKNOWN)
            unknown += token == TOKEN_UNKNOWN
            tokens[i, t] = token
    return vocabulary, tokens, unknown


# ---------------------------------------------------------------------------------------------
# Checks common to both formats

def pad_steps(path, modality):
    """Pad the splits of a features modality to the longest T (zeros, beyond every length)."""
    steps = max(part.shape[1] for part in modality.parts)
    for s, part in enumerate(modality.parts):
        if part.shape[1] < steps:
            warn(f"{path}: {modality.name}: split {s} has {part.shape[1]} steps, padded with "
                 f"zeros to {steps}, the longest split")
            padded = np.zeros((part.shape[0], steps, part.shape[2]), part.dtype)
            padded[:, :part.shape[1]] = part
            modality.parts[s] = padded


def count_nonfinite(path, conv, modality, zero):
    """Count NaN and Inf values of a features modality; replace them with 0 when `zero`."""
    counts = {"-inf": 0, "+inf": 0, "nan": 0}
    samples, first = 0, None
    offset = 0
    for s, part in enumerate(modality.parts):
        for start in range(0, part.shape[0], WRITE_BLOCK):
            block = np.asarray(part[start:start + WRITE_BLOCK], np.float32)
            bad = ~np.isfinite(block)
            if not bad.any():
                continue
            counts["nan"] += int(np.isnan(block).sum())
            counts["-inf"] += int(np.isneginf(block).sum())
            counts["+inf"] += int(np.isposinf(block).sum())
            rows = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))
            samples += rows.size
            if first is None:
                first = conv.ids[offset + start + rows[0]]
            if zero:
                block[bad] = 0
                # Arrays rebuilt from protocol 5 pickles are read-only, so write into a copy.
                if part.dtype != np.float32 or not part.flags.writeable:
                    modality.parts[s] = part = part.astype(np.float32)
                part[start:start + WRITE_BLOCK] = block
        offset += part.shape[0]
    total = sum(counts.values())
    if total:
        detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        action = "replaced with 0 (--nonfinite zero)" if zero else (
            "kept as they are; load the file with --nonfinite zero (euar train, euar data "
            "inspect), or import with --nonfinite zero")
        warn(f"{path}: {modality.name}: {total} non-finite value{'s' if total > 1 else ''} "
             f"({detail}) in {samples} sample{'s' if samples > 1 else ''}, the first in "
             f"sample '{first}', {action}")
    return total


# ---------------------------------------------------------------------------------------------
# Writing

def create_group(parent, name):
    """Create a group without modification times, as h5_write.c does."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def put_strings(location, name, values):
    location.create_dataset(name, data=np.array(values, dtype=object),
                            dtype=h5py.string_dtype(), track_times=False)


def write_h5(tmp_path, conv, name, source_file):
    n = len(conv.ids)
    with h5py.File(tmp_path, "w") as f:
        strings = h5py.string_dtype()
        f.attrs["format"] = FORMAT_NAME
        f.attrs.create("format_version", FORMAT_VERSION, dtype="<i4")
        f.attrs["name"] = name
        f.attrs["task"] = "regression"
        f.attrs.create("modalities", [m.name for m in conv.modalities], dtype=strings)
        f.attrs["source_format"] = conv.source_format
        f.attrs["source_file"] = source_file
        f.attrs.create("source_splits", conv.split_names, dtype=strings)

        samples = create_group(f, "samples")
        put_strings(samples, "id", conv.ids)
        samples.create_dataset("split", data=conv.split.astype("u1"), track_times=False)
        samples.create_dataset("source_index", data=conv.source_index.astype("<i4"),
                               track_times=False)
        samples.create_dataset("source_label", data=conv.labels.astype("<f8"),
                               track_times=False)
        labels = np.clip(conv.labels, -LABEL_MAX, LABEL_MAX).astype("<f4")
        f.create_dataset("labels", data=labels, track_times=False)

        group = create_group(f, "modalities")
        for m in conv.modalities:
            g = create_group(group, m.name)
            g.attrs["kind"] = m.kind
            if m.kind == "tokens":
                g.attrs.create("vocab_size", len(m.vocabulary), dtype="<i4")
                steps = m.parts[0].shape[1]
                data = g.create_dataset("data", shape=(n, steps), dtype="<i4",
                                        chunks=(min(CHUNK_SMALL, n), steps), track_times=False)
            else:
                steps, width = m.parts[0].shape[1:]
                data = g.create_dataset("data", shape=(n, steps, width), dtype="<f4",
                                        chunks=(min(CHUNK_FEATURES, n), steps, width),
                                        track_times=False)
            offset = 0
            for part in m.parts:
                for start in range(0, part.shape[0], WRITE_BLOCK):
                    block = part[start:start + WRITE_BLOCK]
                    data[offset + start:offset + start + block.shape[0]] = block.astype(
                        data.dtype)
                offset += part.shape[0]
            g.create_dataset("lengths", data=m.lengths.astype("<i4"), track_times=False)
            g.create_dataset("available", data=m.available.astype("u1"), track_times=False)
            if m.vocabulary is not None:
                put_strings(g, "vocabulary", m.vocabulary)

        if conv.extras:
            source = create_group(f, "source")
            for key, value in conv.extras.items():
                if isinstance(value, list):
                    put_strings(source, key, value)
                else:
                    source.create_dataset(key, data=value, track_times=False)


def commit(tmp_path, out_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp_path, out_path)


# ---------------------------------------------------------------------------------------------

class ArgumentParser(argparse.ArgumentParser):
    """argparse with the error form of bin/euar: one "euar: error:" line and exit status 1,
    where argparse prints its usage and exits with 2."""

    def error(self, message):
        sys.stderr.write(f"euar: error: {message}; see {self.prog} --help\n")
        sys.exit(1)


def parse_args(argv):
    parser = ArgumentParser(
        prog="import_pickle.py",
        description="Convert an MMSA or MAG-BERT/MIB pickle into a euar-bench HDF5 dataset.")
    parser.add_argument("--format", required=True, choices=("mmsa", "mib"),
                        help="mmsa: dict train/valid/test of arrays; mib: dict train/dev/test "
                             "of ((words, visual, acoustic), label, segment) lists")
    parser.add_argument("input", metavar="IN.pkl", help="the pickle to convert")
    parser.add_argument("--out", required=True, metavar="OUT.h5",
                        help="output HDF5 file, written under a temporary name and renamed")
    parser.add_argument("--name", help="dataset name (default: OUT without its extension)")
    parser.add_argument("--nonfinite", choices=("keep", "zero"), default="keep",
                        help="NaN and Inf in features: keep them (default; the reader then "
                             "needs --nonfinite zero) or store 0")
    parser.add_argument("--max-steps", type=int, default=0, metavar="T",
                        help="mib only: keep at most T words per sample (default: all)")
    return parser.parse_args(argv)


def run(args):
    start = time.time()
    name = args.name
    if name is None:
        name = os.path.splitext(os.path.basename(args.out))[0]
    size = len(name.encode("utf-8"))
    if not 1 <= size <= NAME_MAX:
        raise InputError(f"--name: '{name}' has {size} bytes; use 1 to {NAME_MAX} (the dataset "
                         "format's limit)")
    if "/" in name or any(ord(c) < 0x20 or ord(c) == 0x7f for c in name):
        found = "'/'" if "/" in name else "a control character"
        raise InputError(f"--name: '{name}' contains {found}; choose a name without '/' or "
                         "control characters")
    if args.max_steps < 0:
        raise InputError(f"--max-steps: {args.max_steps} is negative; pass a positive number")
    if args.format == "mmsa" and args.max_steps:
        raise InputError("--max-steps applies to --format mib only; MMSA pickles are padded "
                         "already")
    if os.path.isdir(args.out):
        raise InputError(f"--out: {args.out} is a folder; give a file path such as "
                         f"{args.out}/name.h5")
    out_dir = os.path.dirname(args.out)
    if out_dir and not os.path.exists(out_dir):
        raise InputError(f"--out: folder {out_dir} does not exist; create it first")
    if out_dir and not os.path.isdir(out_dir):
        raise InputError(f"--out: {out_dir} is not a folder; choose an output path in a folder")
    if os.path.exists(args.input) and os.path.exists(args.out) and \
            os.path.samefile(args.input, args.out):
        raise InputError(f"--out: {args.out} is the input file; choose another output")

    data = load_pickle(args.input)
    if args.format == "mmsa":
        conv = convert_mmsa(args.input, data)
    else:
        conv = convert_mib(args.input, data, args.max_steps)
    del data
    check_labels(args.input, conv)
    for m in conv.modalities:
        if m.kind == "features":
            pad_steps(args.input, m)
            count_nonfinite(args.input, conv, m, args.nonfinite == "zero")

    tmp_path = f"{args.out}.tmp.{os.getpid()}"
    try:
        write_h5(tmp_path, conv, name, os.path.basename(args.input))
        commit(tmp_path, args.out)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    flush_warnings()
    print_summary(args, conv, name, time.time() - start)


def print_summary(args, conv, name, seconds):
    sizes = [int(np.sum(conv.split == s)) for s in range(3)]
    splits = ", ".join(f"{SPLIT_NAMES[s]} {sizes[s]}"
                       + (f" from '{conv.split_names[s]}'" if conv.split_names[s] != SPLIT_NAMES[s]
                          else "") for s in range(3))
    print(f"read {args.format} pickle {args.input}: {len(conv.ids)} samples ({splits})")
    for m in conv.modalities:
        shape = [len(conv.ids)] + list(m.parts[0].shape[1:])
        extra = f" vocab {len(m.vocabulary)}" if m.vocabulary is not None else ""
        print(f"modality  {m.name:<10} {m.kind:<8} {shape}{extra}  lengths "
              f"{m.lengths.min()}..{m.lengths.max()}  available {int(m.available.sum())}/"
              f"{len(conv.ids)}")
    megabytes = os.path.getsize(args.out) / 1e6
    print(f"wrote {name} to {args.out}: {megabytes:.1f} MB in {seconds:.1f} s")


def main(argv):
    args = parse_args(argv)
    try:
        run(args)
    except InputError as e:
        sys.stderr.write(f"euar: error: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"euar: error: {e.filename or args.out}: {e.strerror}; check free "
                         "disk space and permissions\n")
        return 1
    except Exception as e:  # h5py reports write failures with several exception types
        sys.stderr.write(f"euar: error: {args.out}: writing failed ({type(e).__name__}: {e}); "
                         "check free disk space and permissions\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
