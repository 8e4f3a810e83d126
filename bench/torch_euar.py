#!/usr/bin/python3
"""PyTorch reference of EUAR for the training-speed benchmark (`make bench`).

The model matches the C implementation in shapes and floating-point work, with the defaults
of Gao et al., "Enhanced Experts with Uncertainty-Aware Routing for Multimodal Sentiment
Analysis", ACM Multimedia 2024:

- each features modality is pooled once at load time to its masked mean over valid steps;
- per modality m: e = ReLU(Linear(D_m, H)(x_m)); p = softmax(Linear(H, E)(e)); G = p with all
  but the top k entries set to zero (not renormalised); all E experts run densely as one
  Linear(H, E * 2H) whose output [B, E, 2H] contains mu and the raw
  log-variance; the
  log-variance is clamped to [-10, 10]; z = mu + exp(lv / 2) * eps in training and z = mu in
  evaluation; h_m = sum_e G[:, e] z[:, e, :];
- fusion: Linear(3H, 1) on the concatenated h_m;
- loss: MSE + alpha sum_m KL_m + beta sum_m Bal_m + lambda sum_m U_m, where KL_m averages
  sum_d 0.5 (mu^2 + exp(lv) - 1 - lv) over samples and experts, Bal_m = E sum_e R_e P_e
  (Switch Transformer load balance; R_e is the share of samples whose largest gate entry is
  e, without gradient, and P_e the batch mean of p_e), and U_m averages
  (1 / E) sum_e G_e mean_d exp(lv) over samples;
- Adam (lr 1e-3, betas 0.9 and 0.999, eps 1e-8), batch 16, a new shuffle every epoch.

The script times each training epoch at one thread. An epoch is forward, backward and Adam
over all training batches, without evaluation. With --device cuda the model, the data and the
optimizer live on the GPU and each epoch ends with torch.cuda.synchronize(). The result is one
JSON line on stdout, while progress and the validation check go to stderr.

Needs Debian's python3-torch, python3-h5py and python3-numpy, which import under
/usr/bin/python3 only. h5py is needed for --data only, so --random-data runs where PyTorch is
installed without it (a GPU machine's own PyTorch, for example).
"""

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time

# One thread everywhere: OpenBLAS reads its variable when the library loads, which happens
# when torch is imported, so these must be set before the import.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:
    sys.exit(
        f"torch_euar.py: error: {exc}. Install the Debian packages with "
        "'apt-get install -y python3-torch python3-h5py python3-numpy libopenblas0-openmp' "
        "and run this script with /usr/bin/python3."
    )

MODALITY_ORDER = ("text", "audio", "vision")
SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = 0, 1, 2
# Shapes of CMU-MOSI's standard train/valid/test split: text [N, 50, 768], audio [N, 50, 74],
# vision [N, 50, 47]. bin/euar's synth-mosi data has the same shapes.
MOSI_SPLITS = (1284, 229, 686)
MOSI_STEPS = 50
MOSI_WIDTHS = {"text": 768, "audio": 74, "vision": 47}
# CMU-MOSEI's standard split and widths (vision 35), the shapes of bin/euar's synth-mosei.
MOSEI_SPLITS = (16326, 1871, 4659)
MOSEI_WIDTHS = {"text": 768, "audio": 74, "vision": 35}
RANDOM_SHAPES = {"mosi": (MOSI_SPLITS, MOSI_WIDTHS), "mosei": (MOSEI_SPLITS, MOSEI_WIDTHS)}
POOL_CHUNK = 256  # samples read from the file at a time while pooling
FORMAT_NAME = "euar-bench"  # root attribute "format" of the files bin/euar writes
FORMAT_VERSION = 1
REGENERATE = "regenerate it with 'bin/euar data synth mosi --out data/synth-mosi.h5 --seed 1'"


class DataError(Exception):
    """Invalid or missing content in the input data file."""


def pool_masked_mean(features, lengths):
    """Return the mean of features [n, T, D] over the first lengths[i] steps of each sample.

    A sample with length 0 gets a row of zeros.
    """
    steps = features.shape[1]
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float32)
    sums = np.einsum("ntd,nt->nd", features, mask)
    counts = np.maximum(lengths, 1).astype(np.float32)[:, None]
    return (sums / counts).astype(np.float32)


def attr_text(obj, name):
    """Return attribute `name` of an HDF5 object as str (h5py returns bytes or str), or None."""
    value = obj.attrs.get(name)
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_dataset(path, h5file, h5path, n=None):
    """Return the HDF5 dataset at h5path, checking that it exists and has n rows."""
    if h5path not in h5file or not isinstance(h5file[h5path], h5py.Dataset):
        raise DataError(f"{path}: {h5path}: missing; {REGENERATE}")
    dataset = h5file[h5path]
    if n is not None and (dataset.ndim < 1 or dataset.shape[0] != n):
        raise DataError(f"{path}: {h5path}: shape {dataset.shape}, expected {n} rows")
    return dataset


h5py = None  # imported by load_h5 only: --random-data runs without it


def import_h5py():
    """Import h5py into the module, or raise DataError naming the missing package."""
    global h5py
    try:
        import h5py as module
    except ImportError as exc:
        raise DataError(f"--data needs h5py ({exc}); install python3-h5py, or use "
                        "--random-data") from exc
    h5py = module


def load_h5(path):
    """Read a regression dataset file in the euar-bench format and pool each modality.

    The layout is the one bin/euar writes: /samples/split [N] uint8, /labels [N] float32 and,
    for each name in the root attribute "modalities", /modalities/<name>/data [N, T, D] and
    /modalities/<name>/lengths [N]. Returns (x, labels, split, names), where x maps each
    modality name to a float32 [N, D] array of masked means.
    """
    import_h5py()
    try:
        h5file = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: failed to open as HDF5 ({exc}); {REGENERATE}") from exc
    with h5file:
        if attr_text(h5file, "format") != FORMAT_NAME:
            raise DataError(f"{path}: root attribute format is {attr_text(h5file, 'format')!r}, "
                            f"expected {FORMAT_NAME!r}; {REGENERATE}")
        version = h5file.attrs.get("format_version")
        if version is None or int(version) > FORMAT_VERSION:
            raise DataError(f"{path}: root attribute format_version is {version}, this script "
                            f"reads version {FORMAT_VERSION} or older; {REGENERATE}")
        if attr_text(h5file, "task") != "regression":
            raise DataError(f"{path}: root attribute task is {attr_text(h5file, 'task')!r}; "
                            "the PyTorch reference trains regression only")
        split = np.asarray(read_dataset(path, h5file, "/samples/split")[...]).astype(np.int64)
        n = split.shape[0]
        labels = np.asarray(read_dataset(path, h5file, "/labels", n)[...], dtype=np.float32)
        names = [
            v.decode("utf-8") if isinstance(v, bytes) else str(v)
            for v in np.atleast_1d(h5file.attrs.get("modalities", []))
        ]
        if not names:
            raise DataError(f"{path}: root attribute modalities is missing or empty; {REGENERATE}")
        x = {}
        for name in names:
            group = f"/modalities/{name}"
            kind = attr_text(h5file[group], "kind") if group in h5file else None
            if kind != "features":
                raise DataError(f"{path}: {group}: kind is {kind!r}; the PyTorch reference "
                                "reads features modalities only")
            data = read_dataset(path, h5file, f"{group}/data", n)
            if data.ndim != 3:
                raise DataError(f"{path}: {group}/data: shape {data.shape}, expected [N, T, D]")
            lengths = np.asarray(read_dataset(path, h5file, f"{group}/lengths", n)[...])
            lengths = lengths.astype(np.int64)
            steps = data.shape[1]
            if lengths.min() < 0 or lengths.max() > steps:
                raise DataError(f"{path}: {group}/lengths: values in [{lengths.min()}, "
                                f"{lengths.max()}] outside [0, {steps}]")
            pooled = np.empty((n, data.shape[2]), dtype=np.float32)
            # Streams the file in chunks, as the C reader does, so that peak memory contains
            # the pooled matrix and one chunk only.
            for first in range(0, n, POOL_CHUNK):
                last = min(first + POOL_CHUNK, n)
                chunk = np.asarray(data[first:last], dtype=np.float32)
                pooled[first:last] = pool_masked_mean(chunk, lengths[first:last])
            x[name] = pooled
    if not np.all(np.isfinite(labels)):
        raise DataError(f"{path}: /labels: contains NaN or Inf")
    for s in (SPLIT_TRAIN, SPLIT_VALID):
        if not np.any(split == s):
            raise DataError(f"{path}: /samples/split: no sample in split {s}")
    return x, labels, split, names


def random_data(seed, shapes="mosi"):
    """Return data of the shapes of CMU-MOSI (or CMU-MOSEI) with labels that a linear model
    can partly learn.

    Features are drawn at full size [N, 50, D] with random lengths and then pooled, so the
    load step does the same work as on a real file.
    """
    splits, widths = RANDOM_SHAPES[shapes]
    rng = np.random.default_rng(seed)
    n = sum(splits)
    split = np.repeat(np.arange(3), splits)
    x = {}
    for name in MODALITY_ORDER:
        lengths = rng.integers(1, MOSI_STEPS + 1, size=n)
        pooled = np.empty((n, widths[name]), dtype=np.float32)
        for first in range(0, n, POOL_CHUNK):
            last = min(first + POOL_CHUNK, n)
            chunk = rng.standard_normal((last - first, MOSI_STEPS, widths[name]),
                                        dtype=np.float32)
            pooled[first:last] = pool_masked_mean(chunk, lengths[first:last])
        x[name] = pooled
    score = sum(x[m] @ rng.standard_normal(x[m].shape[1]).astype(np.float32) for m in x)
    score = score / score.std()
    labels = np.clip(3.0 * np.tanh(score) + 0.3 * rng.standard_normal(n), -3.0, 3.0)
    return x, labels.astype(np.float32), split, list(MODALITY_ORDER)


class GaussianMoe(nn.Module):
    """Encoder, top-k router and E Gaussian experts of one modality."""

    def __init__(self, in_dim, hidden, experts, top_k, lv_min, lv_max):
        super().__init__()
        self.hidden, self.experts, self.top_k = hidden, experts, top_k
        self.lv_min, self.lv_max = lv_min, lv_max
        self.encoder = nn.Linear(in_dim, hidden)
        self.gate = nn.Linear(hidden, experts)
        self.expert_layer = nn.Linear(hidden, experts * 2 * hidden)

    def forward(self, x):
        """Return h [B, H] and the unweighted KL, balance and U terms of this modality."""
        batch = x.shape[0]
        e = F.relu(self.encoder(x))
        p = F.softmax(self.gate(e), dim=1)                       # [B, E]
        top_values, top_index = p.topk(self.top_k, dim=1)
        gate = torch.zeros_like(p).scatter(1, top_index, top_values)
        out = self.expert_layer(e).view(batch, self.experts, 2 * self.hidden)
        mu = out[:, :, : self.hidden]                           # [B, E, H]
        lv = out[:, :, self.hidden :].clamp(self.lv_min, self.lv_max)
        var = lv.exp()
        if self.training:
            z = mu + (0.5 * lv).exp() * torch.randn_like(mu)
        else:
            z = mu
        h = torch.bmm(gate.unsqueeze(1), z).squeeze(1)          # [B, H]
        kl = (0.5 * (mu * mu + var - 1.0 - lv)).sum(dim=2).mean()
        with torch.no_grad():
            share = F.one_hot(p.argmax(dim=1), self.experts).float().mean(dim=0)
        balance = self.experts * (share * p.mean(dim=0)).sum()
        u = (gate * var.mean(dim=2)).sum(dim=1).mean() / self.experts
        return h, kl, balance, u


class Euar(nn.Module):
    """EUAR for regression: one GaussianMoe per modality, then Linear(M H, 1) on the concat."""

    def __init__(self, in_dims, hidden, experts, top_k, lv_min=-10.0, lv_max=10.0):
        super().__init__()
        self.blocks = nn.ModuleList(
            GaussianMoe(d, hidden, experts, top_k, lv_min, lv_max) for d in in_dims
        )
        self.head = nn.Linear(len(in_dims) * hidden, 1)

    def forward(self, xs):
        """Return predictions [B] and the KL, balance and U terms summed over modalities."""
        hs, kl, balance, u = [], 0.0, 0.0, 0.0
        for block, x in zip(self.blocks, xs):
            h, kl_m, balance_m, u_m = block(x)
            hs.append(h)
            kl, balance, u = kl + kl_m, balance + balance_m, u + u_m
        return self.head(torch.cat(hs, dim=1)).squeeze(1), kl, balance, u


def loaded_blas():
    """Return (path, config) of the BLAS library mapped into this process.

    Call after a matrix product, so the library is surely loaded. config is OpenBLAS's own
    description (version, core, thread limit) or "" for another BLAS.
    """
    paths = []
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and re.search(r"blas", os.path.basename(fields[5])):
                if fields[5] not in paths:
                    paths.append(fields[5])
    openblas = [p for p in paths if "openblas" in os.path.basename(p)]
    path = (openblas or paths or ["unknown"])[0]
    config = ""
    if openblas:
        try:
            import ctypes

            lib = ctypes.CDLL(openblas[0])
            lib.openblas_get_config.restype = ctypes.c_char_p
            config = lib.openblas_get_config().decode("ascii", "replace").strip()
        except (OSError, AttributeError):
            config = ""
    return path, config


def evaluate_mse(model, xs, labels):
    """Return the MSE of the model in evaluation mode (z = mu) on whole-split tensors."""
    model.eval()
    with torch.no_grad():
        pred = model(xs)[0]
    model.train()
    return float(F.mse_loss(pred, labels))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Time EUAR training epochs in PyTorch at one thread and print one JSON line."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="HDF5 dataset file, for example data/synth-mosi.h5")
    source.add_argument("--random-data", nargs="?", const="mosi", choices=sorted(RANDOM_SHAPES),
                        help="use random data of CMU-MOSI's (default) or CMU-MOSEI's shapes "
                             "instead of a file")
    parser.add_argument("--epochs", type=int, default=7, help="training epochs to time")
    parser.add_argument("--experts", type=int, default=8, help="experts per modality")
    parser.add_argument("--top-k", type=int, default=3, help="experts selected per sample")
    parser.add_argument("--hidden", type=int, default=128, help="width H of encoders and experts")
    parser.add_argument("--batch", type=int, default=16, help="samples per training batch")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--alpha", type=float, default=1e-3, help="weight of the KL term")
    parser.add_argument("--beta", type=float, default=1e-5, help="weight of the balance term")
    parser.add_argument("--lambda", dest="lam", type=float, default=1e-3,
                        help="weight of the U-loss")
    parser.add_argument("--seed", type=int, default=1, help="seed of init, shuffles and eps")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the model and the data live (default cpu)")
    args = parser.parse_args(argv)

    checks = [
        (args.epochs >= 1, f"--epochs {args.epochs}: must be at least 1"),
        (args.experts >= 1, f"--experts {args.experts}: must be at least 1"),
        (1 <= args.top_k <= args.experts,
         f"--top-k {args.top_k}: must be between 1 and --experts ({args.experts})"),
        (args.hidden >= 1, f"--hidden {args.hidden}: must be at least 1"),
        (args.batch >= 1, f"--batch {args.batch}: must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return args


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch_euar.py: error: --device cuda, but torch.cuda.is_available() is False "
              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})", file=sys.stderr)
        return 1
    device = torch.device(args.device)
    try:
        if args.data:
            x, labels, split, names = load_h5(args.data)
        else:
            x, labels, split, names = random_data(args.seed, args.random_data)
    except DataError as exc:
        print(f"torch_euar.py: error: {exc}", file=sys.stderr)
        return 1

    def split_tensors(s):
        rows = np.flatnonzero(split == s)
        return ([torch.from_numpy(x[m][rows]).to(device) for m in names],
                torch.from_numpy(labels[rows]).to(device))

    train_x, train_y = split_tensors(SPLIT_TRAIN)
    valid_x, valid_y = split_tensors(SPLIT_VALID)
    n_train = train_y.shape[0]

    model = Euar([x[m].shape[1] for m in names], args.hidden, args.experts, args.top_k)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    shuffle = torch.Generator().manual_seed(args.seed)
    blas_path, blas_config = loaded_blas()

    print(f"torch_euar.py: torch {torch.__version__}, BLAS {blas_path} ({blas_config or 'n/a'}), "
          f"modalities {','.join(names)}, {n_train} training samples, "
          f"{sum(p.numel() for p in model.parameters())} parameters, experts {args.experts}",
          file=sys.stderr)

    epoch_s = []
    model.train()
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n_train, generator=shuffle).to(device)
        loss_sum = 0.0
        for first in range(0, n_train, args.batch):
            rows = order[first : first + args.batch]
            pred, kl, balance, u = model([t[rows] for t in train_x])
            task = F.mse_loss(pred, train_y[rows])
            loss = task + args.alpha * kl + args.beta * balance + args.lam * u
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * rows.shape[0]
        if args.device == "cuda":
            torch.cuda.synchronize()
        epoch_s.append(time.perf_counter() - start)
        print(f"epoch {epoch}/{args.epochs} train_loss {loss_sum / n_train:.4f} "
              f"time {epoch_s[-1]:.3f} s", file=sys.stderr)

    valid_mse = evaluate_mse(model, valid_x, valid_y)
    # MSE of always predicting the training mean, the score of a model that learned nothing.
    baseline_mse = float(((valid_y - train_y.mean()) ** 2).mean())
    learned = valid_mse < baseline_mse
    print(f"valid MSE {valid_mse:.4f} after {args.epochs} epochs; predicting the training mean "
          f"gives {baseline_mse:.4f}; {'learned' if learned else 'WARNING: did not learn'}",
          file=sys.stderr)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(json.dumps({
        "impl": "pytorch" if args.device == "cpu" else "pytorch-cuda",
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else "",
        "hidden": args.hidden,
        "batch": args.batch,
        "torch": torch.__version__,
        "blas": blas_path,
        "blas_config": blas_config,
        "threads": torch.get_num_threads(),
        "experts": args.experts,
        "epochs": args.epochs,
        "epoch_s": [round(t, 6) for t in epoch_s],
        "median_epoch_s": round(statistics.median(epoch_s), 6),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "valid_mse": round(valid_mse, 6),
        "valid_mse_mean_predictor": round(baseline_mse, 6),
        "data": args.data or f"random-{args.random_data}",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
