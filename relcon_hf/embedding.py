# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Embed recordings of any length with a RelCon checkpoint and write timestamped embeddings to Parquet.

Each recording is read in chunks of rows (`readers.iter_recording_chunks`), cleaned and windowed like the
pre-training data (`windowing.window_clean_recording`), and embedded batch by batch. Every chunk's rows are written as
one Parquet row group before the next chunk is embedded, so memory depends on `chunk_rows` and `batch_size`, not on
the length of the recording. A background thread reads the next chunk while the model embeds the current one.
"""

import logging
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

from .allocator import retain_freed_memory
from .data.readers import Recording, _check_path_and_format, iter_recording_chunks, recording_stem
from .data.windowing import FLAG_REASONS, RecordingWindows, window_clean_recording
from .modeling import RelConConfig, RelConFeatureExtractor, RelConForSequenceClassification, RelConModel


logger = logging.getLogger(__name__)

# Rows per chunk when embedding: 1 hour at 100 Hz. Smaller than for `prepare`, so the progress bar moves often and a
# chunk's float64 copies stay near 30 MB.
EMBED_CHUNK_ROWS = 3600 * 100
# Bytes read from the start of a CSV file to estimate its number of rows for the progress bar.
_CSV_SAMPLE_BYTES = 1 << 16


@dataclass
class EmbeddingSummary:
    """
    Counts of one `embed_recordings` run.

    Args:
        output (`str`): Path of the Parquet file written.
        num_windows (`int`): Rows written, one per window.
        windows_per_recording (`dict[str, int]`): Windows written for each input path.
        dropped (`dict[str, int]`): Window positions without a window, by reason (`windowing.DROP_REASONS`), summed
            over recordings.
        prediction_columns (`list[str]`): Columns of head predictions; empty for an encoder without a head.
    """

    output: str
    num_windows: int = 0
    windows_per_recording: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    prediction_columns: list[str] = field(default_factory=list)


class RecordingEmbedder:
    """
    A RelCon encoder, with its head when the checkpoint has one, ready to embed windows in batches.

    Args:
        model_dir (`str` or `os.PathLike`): A `save_pretrained` folder of [`RelConModel`] or
            [`RelConForSequenceClassification`].
        device (`str`, *optional*, defaults to `"cpu"`): Torch device, such as `"cpu"`, `"cuda"` or `"cuda:1"`.
        batch_size (`int`, *optional*, defaults to 256): Windows per forward pass.
        bf16 (`bool`, *optional*, defaults to `False`): Run the forward under bfloat16 autocast (for GPUs).
        hop_length (`int`, *optional*): Step between windows in samples at the model rate. Defaults to the hop of
            the checkpoint's feature extractor, which is the window length unless it was saved with another.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        device: str = "cpu",
        batch_size: int = 256,
        bf16: bool = False,
        hop_length: int | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{model_dir} has no config.json. Pass the folder of a RelCon checkpoint written by save_pretrained "
                "(for example RUN/encoder from `relcon-hf pretrain`)."
            )
        config = RelConConfig.from_pretrained(model_dir)
        self.has_head = "RelConForSequenceClassification" in (config.architectures or [])
        model_class = RelConForSequenceClassification if self.has_head else RelConModel
        self.model: torch.nn.Module = model_class.from_pretrained(model_dir).to(device).eval()
        self.config = self.model.config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.bf16 = bf16

        if (model_dir / "preprocessor_config.json").is_file():
            self.extractor = RelConFeatureExtractor.from_pretrained(model_dir)
        else:
            self.extractor = RelConFeatureExtractor(
                feature_size=config.num_channels,
                sampling_rate=config.sampling_rate,
                window_length=config.window_length,
            )
        if hop_length is not None:
            self.extractor.hop_length = hop_length
        if isinstance(self.extractor.hop_length, bool) or not (
            isinstance(self.extractor.hop_length, int) and self.extractor.hop_length >= 1
        ):
            raise ValueError(f"`hop_length` must be a positive number of samples, got {self.extractor.hop_length!r}.")
        self.prediction_columns = self._prediction_columns()

    def _prediction_columns(self) -> list[str]:
        if not self.has_head:
            return []
        names = [str(self.config.id2label[index]) for index in range(len(self.config.id2label))]
        if self.config.problem_type == "regression":
            return [f"predicted_{name}" for name in names]
        if self.config.problem_type == "multi_label_classification":
            return [f"probability_{name}" for name in names]
        return ["predicted_label", "predicted_probability"]

    @torch.inference_mode()
    def embed_windows(self, windows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """
        Embed windows and apply the head, if any.

        Args:
            windows (`np.ndarray` of shape `(num_windows, window_length, 3)`, float32): Acceleration in g at the
                model rate.

        Returns:
            `(embeddings, predictions)`: `embeddings` of shape `(num_windows, hidden_size)`, float32, and one array of
            shape `(num_windows,)` per column in `prediction_columns`.
        """
        embeddings, logits = [], []
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        for start in range(0, len(windows), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + self.batch_size])).to(self.device)
            with autocast:
                if self.has_head:
                    output = self.model(input_values=batch)
                    embeddings.append(output.embeddings.float().cpu())
                    logits.append(output.logits.float().cpu())
                else:
                    embeddings.append(self.model(input_values=batch).pooler_output.float().cpu())

        hidden_size = self.config.hidden_size
        if not embeddings:
            return np.zeros((0, hidden_size), dtype=np.float32), self._predictions(torch.zeros(0, 0))
        return torch.cat(embeddings).numpy(), self._predictions(torch.cat(logits) if logits else torch.zeros(0, 0))

    def _predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        if not self.has_head:
            return {}
        if len(logits) == 0:
            logits = torch.zeros(0, len(self.config.id2label))
        if self.config.problem_type == "regression":
            return {name: logits[:, index].numpy() for index, name in enumerate(self.prediction_columns)}
        if self.config.problem_type == "multi_label_classification":
            probabilities = torch.sigmoid(logits)
            return {name: probabilities[:, index].numpy() for index, name in enumerate(self.prediction_columns)}
        probabilities = torch.softmax(logits, dim=-1)
        best, index = probabilities.max(dim=-1)
        labels = np.array([str(self.config.id2label[int(i)]) for i in index], dtype=object)
        return {"predicted_label": labels, "predicted_probability": best.numpy()}


def embed_recordings(
    paths: Sequence[str | os.PathLike],
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    batch_size: int = 256,
    hop_length: int | None = None,
    device: str = "cpu",
    bf16: bool = False,
    num_workers: int = 1,
    chunk_rows: int = EMBED_CHUNK_ROWS,
    drop_flagged: Sequence[str] = ("non_finite",),
    max_gap_seconds: float = 1.0,
    progress: bool = True,
    **read_options: Any,
) -> EmbeddingSummary:
    """
    Embed every window of every recording and write the rows to one Parquet file.

    Output columns: `recording` (the input path), `window_start` (seconds from the recording's first sample),
    `timestamp` (UTC start of the window, null for files without absolute timestamps) and `embedding` (a fixed-size
    list of `hidden_size` float32 values). A checkpoint with a head adds `predicted_label` and `predicted_probability`
    (single-label classification), `predicted_<target>` (regression) or `probability_<label>` (multi-label).

    Args:
        paths (`Sequence[str | os.PathLike]`): Recordings in any format `read_recording` accepts.
        model_dir (`str` or `os.PathLike`): Checkpoint folder, see [`RecordingEmbedder`].
        output (`str` or `os.PathLike`): Parquet file to write; replaced when it exists.
        batch_size (`int`): Windows per forward pass.
        hop_length (`int`, *optional*): Step between windows in samples at the model rate.
        device (`str`): Torch device of the model.
        bf16 (`bool`): Run the forward under bfloat16 autocast.
        num_workers (`int`): Processes that embed recordings in parallel, one recording each at a time. With more
            than one, each process uses `torch.get_num_threads() // num_workers` threads, and the progress bar counts
            whole recordings.
        chunk_rows (`int`): Rows read and embedded at a time; bounds memory.
        drop_flagged (`Sequence[str]`): Reasons in `windowing.FLAG_REASONS` whose windows are left out. By default
            only windows that overlap non-finite samples are; windows flagged for other reasons (constant stretches
            such as non-wear, clipping) are embedded.
        max_gap_seconds (`float`): Longer time steps split a recording; no window spans them.
        progress (`bool`): Show a progress bar with the rows read and an ETA on standard error.
        **read_options: `sampling_rate`, `unit`, `columns`, `time_column`, `format` and `timezone`, passed to
            `iter_recording_chunks` for every input.

    Returns:
        [`EmbeddingSummary`].
    """
    unknown = sorted(set(drop_flagged) - set(FLAG_REASONS))
    if unknown:
        raise ValueError(f"`drop_flagged` must contain reasons among {', '.join(FLAG_REASONS)}, got {unknown}.")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"`num_workers` must be a positive integer, got {num_workers!r}.")
    if not paths:
        raise ValueError("`paths` is empty. Pass at least one recording.")
    for path in paths:
        _check_path_and_format(Path(path), read_options.get("format"))

    retain_freed_memory()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "batch_size": batch_size,
        "hop_length": hop_length,
        "device": device,
        "bf16": bf16,
        "chunk_rows": chunk_rows,
        "keep_flagged": frozenset(FLAG_REASONS) - set(drop_flagged),
        "max_gap_seconds": max_gap_seconds,
        "read_options": read_options,
    }
    if num_workers > 1 and len(paths) > 1:
        return _embed_in_processes(
            [str(path) for path in paths], str(model_dir), output, options, num_workers, progress
        )

    embedder = RecordingEmbedder(model_dir, device=device, batch_size=batch_size, bf16=bf16, hop_length=hop_length)
    summary = EmbeddingSummary(output=str(output), prediction_columns=list(embedder.prediction_columns))
    total_rows = sum(_estimate_rows(Path(path), read_options) or 0 for path in paths) or None
    temporary = output.with_name(output.name + ".tmp")
    with (
        tqdm(total=total_rows, unit="row", unit_scale=True, disable=not progress, desc="embed") as bar,
        _EmbeddingWriter(temporary, embedder) as writer,
    ):
        for path in paths:
            count = _embed_one(str(path), embedder, writer, options, summary.dropped, bar.update)
            summary.windows_per_recording[str(path)] = count
            summary.num_windows += count
    os.replace(temporary, output)
    return summary


def _embed_one(
    path: str,
    embedder: RecordingEmbedder,
    writer: "_EmbeddingWriter",
    options: dict,
    dropped: dict[str, int],
    advance: Callable[[float], Any],
) -> int:
    """Embed one recording chunk by chunk into `writer`; return its number of windows."""
    first_start = None
    rows_before = 0
    count = 0
    chunks = iter_recording_chunks(path, chunk_rows=options["chunk_rows"], **options["read_options"])
    for recording in _prefetch(chunks):
        windowed = window_clean_recording(
            recording,
            embedder.extractor,
            max_gap_seconds=options["max_gap_seconds"],
            keep_flagged=options["keep_flagged"],
        )
        # NOTE: each chunk starts its own window grid, so up to one window per chunk boundary is not embedded.
        if recording.start_time is not None:
            first_start = recording.start_time if first_start is None else first_start
            offset = (recording.start_time - first_start).total_seconds()
        else:
            offset = rows_before / recording.sampling_rate
        rows_before += recording.num_rows
        for reason, number in windowed.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + number

        rows_per_window = recording.num_rows / max(len(windowed), 1)
        for start in range(0, max(len(windowed), 1), embedder.batch_size * 8):
            stop = min(start + embedder.batch_size * 8, len(windowed))
            if stop > start:
                embeddings, predictions = embedder.embed_windows(windowed.windows[start:stop])
                writer.write(path, windowed, start, stop, offset, recording, embeddings, predictions)
            advance(recording.num_rows if len(windowed) == 0 else (stop - start) * rows_per_window)
        count += len(windowed)
    return count


class _EmbeddingWriter:
    """Append rows of windows to a Parquet file, one row group per call to `write`."""

    def __init__(self, path: Path, embedder: RecordingEmbedder):
        hidden_size = embedder.config.hidden_size
        fields = [
            pa.field("recording", pa.string()),
            pa.field("window_start", pa.float64()),
            pa.field("timestamp", pa.timestamp("us", tz="UTC")),
            pa.field("embedding", pa.list_(pa.float32(), hidden_size)),
        ]
        for name in embedder.prediction_columns:
            fields.append(pa.field(name, pa.string() if name == "predicted_label" else pa.float32()))
        self.schema = pa.schema(fields)
        self.hidden_size = hidden_size
        self.path = path
        self.writer: pq.ParquetWriter | None = None

    def __enter__(self) -> "_EmbeddingWriter":
        self.writer = pq.ParquetWriter(self.path, self.schema)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.writer is not None:
            self.writer.close()
        if exc_info[0] is not None:
            self.path.unlink(missing_ok=True)

    def write(
        self,
        path: str,
        windowed: RecordingWindows,
        start: int,
        stop: int,
        offset: float,
        recording: Recording,
        embeddings: np.ndarray,
        predictions: dict[str, np.ndarray],
    ) -> None:
        window_start = windowed.window_start[start:stop] + offset
        if recording.start_time is not None:
            first = recording.start_time.timestamp() - offset
            microseconds = np.round((first + window_start) * 1e6).astype("int64")
            timestamps = pa.array(microseconds, type=pa.timestamp("us", tz="UTC"))
        else:
            timestamps = pa.nulls(stop - start, type=pa.timestamp("us", tz="UTC"))
        flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1))
        columns = [
            pa.array([path] * (stop - start), type=pa.string()),
            pa.array(window_start, type=pa.float64()),
            timestamps,
            pa.FixedSizeListArray.from_arrays(flat, self.hidden_size),
        ]
        for name in self.schema.names[4:]:
            columns.append(pa.array(predictions[name], type=self.schema.field(name).type))
        assert self.writer is not None
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))


def _prefetch(chunks: Iterator[Recording]) -> Iterator[Recording]:
    """Read the next chunk in a background thread while the caller embeds the current one (two chunks in memory)."""
    slot: queue.Queue = queue.Queue(maxsize=1)
    finished = object()
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                slot.put(chunk)
            slot.put(finished)
        except BaseException as error:  # handed to the caller, which raises it
            slot.put(error)

    thread = threading.Thread(target=read, name="embed-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slot.get()
            if item is finished:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Unblock a reader waiting to put its next chunk, so the thread ends.
        while thread.is_alive():
            try:
                slot.get(timeout=0.1)
            except queue.Empty:
                pass


def _estimate_rows(path: Path, read_options: dict) -> int | None:
    """Rows of a recording for the progress bar: exact for Parquet and `.npy`, estimated for CSV, else None."""
    try:
        file_format = _check_path_and_format(path, read_options.get("format"))
        if file_format == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        if file_format == "npy":
            return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        if file_format == "csv" and path.suffix.lower() == ".csv":
            with open(path, "rb") as handle:
                sample = handle.read(_CSV_SAMPLE_BYTES)
            lines = sample.count(b"\n")
            return math.ceil(path.stat().st_size / len(sample) * lines) if lines else None
    except (OSError, ValueError):
        return None
    return None


def _embed_in_processes(
    paths: list[str], model_dir: str, output: Path, options: dict, num_workers: int, progress: bool
) -> EmbeddingSummary:
    """Embed each recording in a worker process into a part file, then join the parts in input order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(num_workers, len(paths))
    threads = max(1, torch.get_num_threads() // workers)
    parts = [output.with_name(f"{output.name}.part{index}") for index in range(len(paths))]
    jobs = [(path, model_dir, str(part), options, threads) for path, part in zip(paths, parts, strict=True)]
    context = multiprocessing.get_context("spawn")
    summary = EmbeddingSummary(output=str(output))
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(
                tqdm(
                    pool.map(_embed_part, jobs), total=len(jobs), unit="recording", disable=not progress, desc="embed"
                )
            )
        for path, (count, dropped, columns) in zip(paths, results, strict=True):
            summary.windows_per_recording[path] = count
            summary.num_windows += count
            summary.prediction_columns = columns
            for reason, number in dropped.items():
                summary.dropped[reason] = summary.dropped.get(reason, 0) + number

        temporary = output.with_name(output.name + ".tmp")
        writer = None
        try:
            for part in parts:
                part_file = pq.ParquetFile(part)
                writer = writer or pq.ParquetWriter(temporary, part_file.schema_arrow)
                for group in range(part_file.num_row_groups):
                    writer.write_table(part_file.read_row_group(group))
        finally:
            if writer is not None:
                writer.close()
        os.replace(temporary, output)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return summary


def _embed_part(job: tuple) -> tuple[int, dict[str, int], list[str]]:
    path, model_dir, part, options, threads = job
    torch.set_num_threads(threads)
    embedder = RecordingEmbedder(
        model_dir,
        device=options["device"],
        batch_size=options["batch_size"],
        bf16=options["bf16"],
        hop_length=options["hop_length"],
    )
    dropped: dict[str, int] = {}
    with _EmbeddingWriter(Path(part), embedder) as writer:
        count = _embed_one(path, embedder, writer, options, dropped, lambda rows: None)
    logger.info(f"Embedded {count} windows of {recording_stem(path)}.")
    return count, dropped, embedder.prediction_columns


__all__ = ["EMBED_CHUNK_ROWS", "EmbeddingSummary", "RecordingEmbedder", "embed_recordings"]
