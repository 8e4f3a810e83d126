#!/usr/bin/python3
"""Write small MMSA and MAG-BERT/MIB pickles, good and bad, for the pickle importer tests.

    /usr/bin/python3 tests/pickle_fixtures.py DIR

Every stored value follows a formula of the sample's position g in the concatenated splits
(train, then valid or dev, then test), so tests/test_import_pickle.c can recompute them:

- mmsa.pkl: 4 train, 2 valid, 3 test samples. text [n, 5, 6] = 1000 g + 10 t + d;
  audio [n, 4, 3] = 1000 g + 10 t + d + 0.5 with -inf at (1, 0, 0), (5, 3, 2) and (7, 1, 1);
  vision [n, 3, 2] float64 = -(1000 g + 10 t + d) - 0.25. Lengths, labels and ids are the
  MMSA_* lists below: two audio lengths beyond the padding, two labels beyond 3 in magnitude.
- mib.pkl: 3 train, 2 dev, 2 test samples with the MIB_* words; visual [words, 5] =
  100 g + 10 t + d + 0.125 and acoustic [words, 4] = -(100 g + 10 t + d) with -inf at
  test sample 0 (g = 5), step 1, column 2. Sample dev[1] has no words.
"""

import os
import pickle
import sys

import numpy as np

MMSA_SIZES = (4, 2, 3)
MMSA_TEXT_LENGTHS = [5, 3, 1, 4, 2, 5, 0, 3, 4]
MMSA_AUDIO_LENGTHS = [4, 6, 2, 4, 9, 1, 3, 4, 0]
MMSA_VISION_LENGTHS = [3, 3, 2, 1, 3, 0, 2, 3, 3]
MMSA_LABELS = [0.4, -1.2, 3.5, -3.2, 2.0, 0.0, -0.6, 1.8, -2.4]
MMSA_IDS = ["3g5yA-CwYnA$_$0", "a_b-c$_$1", "-leading_dash", "x_y_z",
            "valid-0_A", "valid-1_B", "test-a_0", "test_b-1", "test-c$_$2"]
MMSA_AUDIO_NEGINF = [(1, 0, 0), (5, 3, 2), (7, 1, 1)]

MIB_WORDS = {
    "train": [["the", "movie", "was", "good"], ["bad", "movie"], ["it", "was", "-", "fine_ish"]],
    "dev": [["good", "plot", "twist"], []],
    "test": [["movie", "bad", "ending"], ["unseen"]],
}
MIB_LABELS = [1.0, -2.2, 3.5, 0.6, 0.0, -3.1, 2.6]
MIB_SEGMENTS = ["vid-A_b[0]", "vid-A_b[1]", "c_D-e[0]", "dev-x_1", "dev-y_2", "t-1_a", "t_2-b"]


def mmsa_split(first, n):
    g = np.arange(first, first + n)[:, None, None]
    text = (1000 * g + 10 * np.arange(5)[None, :, None] + np.arange(6)).astype(np.float32)
    audio = (1000 * g + 10 * np.arange(4)[None, :, None] + np.arange(3) + 0.5).astype(np.float32)
    vision = -(1000 * g + 10 * np.arange(3)[None, :, None] + np.arange(2)) - 0.25
    for gg, t, d in MMSA_AUDIO_NEGINF:
        if first <= gg < first + n:
            audio[gg - first, t, d] = -np.inf
    bert = np.zeros((n, 3, 5), np.float64)
    for i in range(n):
        length = MMSA_TEXT_LENGTHS[first + i]
        bert[i, 0, :length] = 101 + np.arange(length)
        bert[i, 1, :length] = 1
    rows = slice(first, first + n)
    return {
        "raw_text": [f"sentence {first + i}" for i in range(n)],
        "text": text,
        "text_bert": bert,
        "audio": audio,
        "vision": vision.astype(np.float64),
        "audio_lengths": MMSA_AUDIO_LENGTHS[rows],
        "vision_lengths": np.array(MMSA_VISION_LENGTHS[rows]),
        "regression_labels": np.array(MMSA_LABELS[rows], np.float32),
        "classification_labels": np.zeros(n),
        "id": np.array(MMSA_IDS[rows]),
    }


def mmsa_data():
    data, first = {}, 0
    for name, n in zip(("train", "valid", "test"), MMSA_SIZES):
        data[name] = mmsa_split(first, n)
        first += n
    data["valid"]["regression_labels"] = data["valid"]["regression_labels"][:, None]
    data["train"]["id"] = list(data["train"]["id"])
    return data


def mib_data(visual_width=5):
    data, g = {}, 0
    for split in ("train", "dev", "test"):
        samples = []
        for words in MIB_WORDS[split]:
            steps = np.arange(len(words))[:, None]
            width = visual_width if split == "dev" else 5
            visual = 100 * g + 10 * steps + np.arange(width) + 0.125
            acoustic = -(100 * g + 10 * steps + np.arange(4)).astype(np.float64)
            if g == 5:
                acoustic[1, 2] = -np.inf
            label = np.array([[MIB_LABELS[g]]])
            samples.append(((np.array(words, dtype=object) if g == 1 else words, visual,
                             acoustic), label, MIB_SEGMENTS[g]))
            g += 1
        data[split] = samples
    return data


def dump(folder, name, data, protocol):
    with open(os.path.join(folder, name), "wb") as f:
        pickle.dump(data, f, protocol=protocol)


def main(folder):
    # Protocol 5 stores array bytes through numpy's _frombuffer (read-only arrays) and
    # protocol 2 through _codecs.encode: both paths of the restricted unpickler are exercised.
    dump(folder, "mmsa.pkl", mmsa_data(), 5)
    dump(folder, "mib.pkl", mib_data(), 2)

    with open(os.path.join(folder, "mmsa.pkl"), "rb") as f:
        whole = f.read()
    with open(os.path.join(folder, "truncated.pkl"), "wb") as f:
        f.write(whole[:len(whole) * 6 // 10])
    with open(os.path.join(folder, "not_pickle.pkl"), "w") as f:
        f.write("id,label\nclip-1,0.5\n")
    # A pickle that calls os.system when loaded by pickle.load; the marker must not appear.
    marker = os.path.join(folder, "evil-ran")
    with open(os.path.join(folder, "evil.pkl"), "wb") as f:
        f.write(b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR.")

    data = mmsa_data()
    del data["test"]
    dump(folder, "missing_split.pkl", data, 4)
    data = mmsa_data()
    del data["valid"]["audio"]
    dump(folder, "missing_key.pkl", data, 4)
    data = mmsa_data()
    data["train"]["audio"] = data["train"]["audio"][:3]
    dump(folder, "mismatch.pkl", data, 4)
    data = mmsa_data()
    data["test"]["vision"] = np.zeros((3, 3, 3))
    dump(folder, "width.pkl", data, 4)
    data = mmsa_data()
    data["test"]["id"][1] = "a_b-c$_$1"
    dump(folder, "dup_ids.pkl", data, 4)
    data = mmsa_data()
    data["test"]["audio_lengths"] = [2, -1, 3]
    dump(folder, "negative_length.pkl", data, 4)
    data = mmsa_data()
    data["test"]["regression_labels"] = np.array([0.5, np.nan, 1.0], np.float32)
    dump(folder, "nan_label.pkl", data, 4)

    dump(folder, "mib_width.pkl", mib_data(visual_width=6), 4)
    data = mib_data()
    (words, visual, acoustic), label, segment = data["train"][2]
    data["train"][2] = ((words, visual, acoustic[:3]), label, segment)
    dump(folder, "mib_mismatch.pkl", data, 4)
    data = mib_data()
    data["test"][1] = (data["test"][1][0], data["test"][1][1], "vid-A_b[1]")
    dump(folder, "mib_dup_ids.pkl", data, 4)


if __name__ == "__main__":
    main(sys.argv[1])
