# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Readers for device files, device CSV exports with header blocks, and the WISDM smartwatch text format.

Each reader returns a `RawTable`: acceleration in the file's unit, optional timestamps and labels, and the facts the
file states (device, range, rate, time zone). `read_recording` in `readers.py` then resolves the rate, the unit and
the time zone the same way for every format.

Device binary files are decoded by maintained libraries, installed with the `devices` extra:

- Axivity `.cwa` and GENEActiv `.bin`: scikit-digital-health (`skdh.io.ReadCwa`, `skdh.io.ReadBin`), a compiled
  reader that installs from wheels without Java.
- ActiGraph `.gt3x`: pygt3x, ActiGraph's own pure-Python reader. It fills idle-sleep periods with the last sample;
  those filled rows are removed here, so the recording shows the gaps the device really had.
"""

import gzip
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd


logger = logging.getLogger(__name__)

DEVICE_SUFFIXES = (".cwa", ".bin", ".gt3x")
# Number of leading lines searched for a device CSV header block.
_HEADER_SCAN_LINES = 200
_GENEACTIV_ROW = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3},")
_WISDM_ROW = re.compile(r"^\s*[^,\s]+,[A-Za-z],[-+0-9.eE]+,[-+0-9.eE]+,[-+0-9.eE]+;?\s*$")
# The WISDM 2019 files carry no timestamps. The dataset's description gives 20 Hz for every sensor.
WISDM_SAMPLING_RATE = 20.0
# Activity codes of the WISDM 2019 dataset description.
WISDM_ACTIVITIES = {
    "A": "walking",
    "B": "jogging",
    "C": "stairs",
    "D": "sitting",
    "E": "standing",
    "F": "typing",
    "G": "brushing teeth",
    "H": "eating soup",
    "I": "eating chips",
    "J": "eating pasta",
    "K": "drinking from cup",
    "L": "eating sandwich",
    "M": "kicking",
    "O": "playing catch",
    "P": "dribbling",
    "Q": "writing",
    "R": "clapping",
    "S": "folding clothes",
}
_GMT_OFFSET = re.compile(r"GMT\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?")


@dataclass
class RawTable:
    """Acceleration and timestamps of one file, before the rate, unit and time zone are resolved."""

    values: np.ndarray  # (time, 3) float64 in the file's unit
    columns: list[str] | None
    time_column: str | None = None
    timestamps: np.ndarray | None = None  # (time,) float64 seconds, Unix time when `timestamps_absolute`
    timestamps_absolute: bool = False
    # True when absolute timestamps are wall-clock times of an unknown zone, read as if they were UTC.
    timestamps_naive: bool = False
    declared_rate: float | None = None  # a rate stored in the file itself
    unit: str | None = None  # a unit stated by the file
    source_timezone: str | None = None  # a zone or fixed offset stated by the file, such as "+02:00"
    labels: np.ndarray | None = None  # (time,) str, a class name per row
    subject_id: str | None = None
    device: dict = field(default_factory=dict)  # facts such as {"type": ..., "serial": ..., "range_g": 8.0}


def detect_format(path: Path) -> str:
    """
    Return the format name of a recording file from its suffix, and from its first lines for `.csv` and `.txt`.

    Names: `"csv"`, `"geneactiv-csv"`, `"actigraph-csv"`, `"parquet"`, `"npy"`, `"npz"`, `"cwa"`, `"geneactiv-bin"`,
    `"gt3x"`, `"wisdm"`.
    """
    name = path.name.lower()
    if name.endswith(".cwa"):
        return "cwa"
    if name.endswith(".bin"):
        return "geneactiv-bin"
    if name.endswith(".gt3x"):
        return "gt3x"
    for suffix in (".parquet", ".npy", ".npz"):
        if name.endswith(suffix):
            return suffix[1:]
    if name.endswith(".csv") or name.endswith(".csv.gz") or name.endswith(".txt"):
        lines = _first_lines(path, 3)
        first = lines[0] if lines else ""
        if first.startswith("Device Type,GENEActiv"):
            return "geneactiv-csv"
        if "actigraph" in first.lower() and first.startswith("-"):
            return "actigraph-csv"
        if lines and all(_WISDM_ROW.match(line) for line in lines):
            return "wisdm"
        if name.endswith(".txt"):
            raise ValueError(
                f"{path}: a .txt file is read only in the WISDM format (lines 'subject,activity,x,y,z;'), but its "
                f"first line is {first[:80]!r}. Rename it to .csv if it is a CSV file, or pass `format=`."
            )
        return "csv"
    raise ValueError(
        f"Unsupported recording file {path}: expected .csv, .csv.gz, .parquet, .npy, .npz, .cwa, .bin, .gt3x or a "
        "WISDM .txt file. Convert other formats to CSV first (time column plus x, y, z)."
    )


def _first_lines(path: Path, count: int) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lines = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                lines.append(line.rstrip("\r\n"))
            if len(lines) >= count:
                break
    return lines


# ---------------------------------------------------------------------------------------------------------------------
# Device binary files


def _missing_library(library: str, file_type: str, error: ImportError) -> ImportError:
    return ImportError(
        f"Reading {file_type} files needs {library}, which is not installed ({error}). Install it with "
        '`pip install "relcon-hf[devices]"`.'
    )


def read_cwa(path: Path) -> RawTable:
    """Decode an Axivity AX3 or AX6 `.cwa` file with scikit-digital-health."""
    return _read_skdh(path, "ReadCwa", "Axivity .cwa", {"type": "Axivity"})


def read_geneactiv_bin(path: Path) -> RawTable:
    """Decode a GENEActiv `.bin` file with scikit-digital-health."""
    return _read_skdh(path, "ReadBin", "GENEActiv .bin", {"type": "GENEActiv", "range_g": 8.0})


def _read_skdh(path: Path, reader_name: str, file_type: str, device: dict) -> RawTable:
    """Decode a device file with the named skdh reader. Its times are device wall-clock times without a zone."""
    try:
        import skdh.io  # noqa: F401  (checked here, used in the child process)
    except ImportError as error:
        raise _missing_library("scikit-digital-health", file_type, error) from None
    decoded = _skdh_predict(reader_name, path)
    return RawTable(
        values=np.asarray(decoded["accel"], dtype=np.float64),
        columns=["accel_x", "accel_y", "accel_z"],
        time_column="time",
        timestamps=np.asarray(decoded["time"], dtype=np.float64),
        timestamps_absolute=True,
        timestamps_naive=True,
        declared_rate=float(np.asarray(decoded["fs"]).reshape(-1)[0]) if "fs" in decoded else None,
        unit="g",
        device={**device, "reader": f"skdh.io.{reader_name}"},
    )


def _skdh_predict(reader_name: str, path: Path) -> dict:
    """
    Run an skdh reader in a child process and return its arrays.

    The compiled skdh readers stop the whole process on a truncated file (a Fortran runtime error, exit status 2),
    which would end a `prepare` run over many files. In a child process that becomes a `ValueError` for this file.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_skdh_predict_here, reader_name, str(path)).result()
        except BrokenProcessPool:
            raise ValueError(
                f"{path}: the skdh decoder stopped its process while reading this file, which happens with "
                "truncated or damaged files. Check the file's size against the original download."
            ) from None


def _skdh_predict_here(reader_name: str, path: str) -> dict:
    import warnings

    import skdh.io

    with warnings.catch_warnings():
        # skdh warns that device-local times carry no zone. read_recording handles that through `timezone`.
        warnings.simplefilter("ignore", UserWarning)
        decoded = getattr(skdh.io, reader_name)().predict(file=path)
    return {key: decoded[key] for key in ("accel", "time", "fs") if key in decoded}


def read_gt3x(path: Path) -> RawTable:
    """
    Decode an ActiGraph `.gt3x` file with pygt3x, in g, with idle-sleep rows removed.

    pygt3x fills each idle-sleep period with copies of the last sample and marks them in `IdleSleepMode`. Those rows
    are not measurements, so they are removed and the recording has a gap there. The file's time zone offset is
    applied, so timestamps come out in UTC.
    """
    try:
        from pygt3x.reader import FileReader
    except ImportError as error:
        raise _missing_library("pygt3x", "ActiGraph .gt3x", error) from None
    with FileReader(str(path)) as reader:
        frame = reader.to_pandas()
        info = reader.info
    measured = ~frame["IdleSleepMode"].to_numpy(dtype=bool) if "IdleSleepMode" in frame else slice(None)
    offset = _parse_offset(str(getattr(info, "timezone", "") or ""))
    timestamps = frame.index.to_numpy(dtype=np.float64)[measured]
    if offset is not None:
        timestamps = timestamps - offset.total_seconds()
    idle_rows = int(len(frame) - len(timestamps))
    if idle_rows:
        logger.info(f"{path}: removed {idle_rows} idle-sleep rows that pygt3x filled with the last sample.")
    return RawTable(
        values=frame[["X", "Y", "Z"]].to_numpy(dtype=np.float64)[measured],
        columns=["X", "Y", "Z"],
        time_column="Timestamp",
        timestamps=timestamps,
        timestamps_absolute=True,
        timestamps_naive=offset is None,
        declared_rate=float(info.sample_rate),
        unit="g",
        source_timezone=_format_offset(offset) if offset is not None else None,
        device={
            "type": str(info.device_type),
            "serial": str(info.serial_number),
            "range_g": float(info.acceleration_max),
            "idle_sleep_rows_removed": idle_rows,
            "reader": "pygt3x",
        },
    )


def _parse_offset(text: str) -> timedelta | None:
    """Parse offsets such as "02:00:00", "-04:30:00", "GMT -04" or "GMT+05:30"; `None` when there is none."""
    text = text.strip()
    match = _GMT_OFFSET.search(text)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    else:
        match = re.fullmatch(r"([+-]?)(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
        if not match:
            return None
        sign, hours, minutes = match.group(1) or "+", int(match.group(2)), int(match.group(3))
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if sign == "-" else offset


def _format_offset(offset: timedelta) -> str:
    return str(timezone(offset)).replace("UTC", "") or "+00:00"


# ---------------------------------------------------------------------------------------------------------------------
# Device CSV exports with header blocks


def read_geneactiv_csv(path: Path) -> RawTable:
    """
    Read a GENEActiv PC Software CSV export: a block of `key,value` lines, then rows of time, x, y, z, light,
    button and temperature, with times such as `2019-08-06 10:25:50:020` in the zone the header states.
    """
    header: dict[str, str] = {}
    data_start = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for index, line in enumerate(handle):
            line = line.replace("\x00", "").rstrip("\r\n")
            if _GENEACTIV_ROW.match(line):
                data_start = index
                break
            key, _, value = line.partition(",")
            if key.strip() and key.strip() not in header:
                header[key.strip()] = value.strip()
    if data_start is None:
        raise ValueError(
            f"{path}: a GENEActiv CSV header block was found, but no data row ('YYYY-MM-DD hh:mm:ss:mmm,x,y,z')."
        )

    frame = pd.read_csv(path, skiprows=data_start, header=None, usecols=[0, 1, 2, 3], encoding_errors="replace")
    times = pd.to_datetime(frame[0], format="%Y-%m-%d %H:%M:%S:%f")
    offset = _parse_offset(header.get("Time Zone", ""))
    seconds = (times - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
    timestamps = seconds.to_numpy(dtype=np.float64)
    if offset is not None:
        timestamps = timestamps - offset.total_seconds()
    rate_match = re.search(r"[\d.]+", header.get("Measurement Frequency", ""))
    range_match = re.search(r"to\s*([\d.]+)", header.get("Range", ""))
    return RawTable(
        values=frame[[1, 2, 3]].to_numpy(dtype=np.float64),
        columns=["x", "y", "z"],
        time_column="time",
        timestamps=timestamps,
        timestamps_absolute=True,
        timestamps_naive=offset is None,
        declared_rate=float(rate_match.group()) if rate_match else None,
        unit="g" if header.get("Units", "").strip().lower() == "g" else None,
        source_timezone=_format_offset(offset) if offset is not None else None,
        device={
            "type": "GENEActiv",
            "serial": header.get("Device Unique Serial Code"),
            "location": header.get("Device Location Code"),
            "range_g": float(range_match.group(1)) if range_match else None,
        },
    )


def read_actigraph_csv(path: Path) -> RawTable:
    """
    Read an ActiLife CSV export: a dashed header block, then a table with `Accelerometer X/Y/Z` columns in g.

    Epoch files of activity counts (`axis1`, `axis2`, `axis3`) are not acceleration and raise `ValueError`.
    """
    lines = _first_lines(path, _HEADER_SCAN_LINES)
    separators = [index for index, line in enumerate(lines) if line.startswith("-----")]
    if len(separators) < 2:
        raise ValueError(f"{path}: an ActiGraph header block starts the file, but its closing dashed line is missing.")
    banner, header_lines = lines[0], lines[1 : separators[1]]
    header = {}
    for line in header_lines:
        text = line.split(",")[0]
        for key in ("Start Time", "Start Date", "Epoch Period (hh:mm:ss)", "Serial Number:"):
            if text.startswith(key):
                header[key.rstrip(":")] = text[len(key) :].strip()
    # Count the blank lines _first_lines skipped, so skiprows points at the table's header row.
    frame = pd.read_csv(path, skiprows=_raw_line_index(path, separators[1] + 1), skip_blank_lines=False)
    names = {str(name).strip().lower(): name for name in frame.columns}
    # Raw exports state an epoch period of 00:00:00; count files a period such as 00:00:01 and no acceleration.
    epoch = next((value for key, value in header.items() if key.startswith("Epoch Period")), "")
    has_axes = all(f"accelerometer {axis}" in names for axis in "xyz")
    counts = {"axis1", "axis2", "axis3"} <= set(names) or (epoch not in ("", "00:00:00") and not has_axes)
    if counts:
        raise ValueError(
            f"{path} is an ActiLife epoch file of activity counts ({len(frame.columns)} columns), not raw "
            "acceleration. RelCon needs raw acceleration in g: export the raw data from ActiLife (or read the "
            ".gt3x file) instead."
        )
    axis_names = [names.get(f"accelerometer {axis}") for axis in "xyz"]
    if any(name is None for name in axis_names):
        raise ValueError(
            f"{path}: expected columns 'Accelerometer X', 'Accelerometer Y', 'Accelerometer Z' in the ActiGraph "
            f"export, got {list(frame.columns)}. Pass `format='csv'` and `columns=` to read other columns."
        )
    rate_match = re.search(r"at\s+([\d.]+)\s*Hz", banner)
    date_format = re.search(r"date format\s+(\S+)", banner)
    dayfirst = bool(date_format and date_format.group(1).lower().startswith("d"))
    table = RawTable(
        values=frame[axis_names].to_numpy(dtype=np.float64),
        columns=[str(name) for name in axis_names],
        declared_rate=float(rate_match.group(1)) if rate_match else None,
        unit="g",
        device={"type": "ActiGraph", "serial": header.get("Serial Number"), "banner": banner.strip("- ")},
    )
    time_name = names.get("timestamp")
    if time_name is not None:
        times = pd.to_datetime(frame[time_name], dayfirst=dayfirst, format="mixed")
        table.time_column = str(time_name)
        table.timestamps = ((times - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
        table.timestamps_absolute = True
        table.timestamps_naive = True
    elif "Start Date" in header and "Start Time" in header and table.declared_rate:
        start = pd.to_datetime(f"{header['Start Date']} {header['Start Time']}", dayfirst=dayfirst)
        start_seconds = (start - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        table.timestamps = start_seconds + np.arange(len(frame)) / table.declared_rate
        table.time_column = "Start Date + Start Time"
        table.timestamps_absolute = True
        table.timestamps_naive = True
    return table


def _raw_line_index(path: Path, nonblank_index: int) -> int:
    """Return the line number of the `nonblank_index`-th non-blank line."""
    seen = -1
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            if line.strip():
                seen += 1
                if seen == nonblank_index:
                    return number
    raise ValueError(f"{path}: the file ends inside its header block.")


# ---------------------------------------------------------------------------------------------------------------------
# WISDM smartwatch text files


def read_wisdm(path: Path) -> RawTable:
    """
    Read a WISDM 2019 text file: lines `subject,activity,x,y,z;` in m/s^2 without timestamps (nominal 20 Hz).

    The activity of each line (its code translated by `WISDM_ACTIVITIES`, unknown codes kept as they are) becomes
    its label, and the subject column the recording's subject.
    """
    frame = pd.read_csv(
        path,
        header=None,
        names=["subject", "activity", "x", "y", "z"],
        dtype={"subject": str, "activity": str},
        converters={"z": lambda text: float(text.strip().rstrip(";")) if text.strip().rstrip(";") else np.nan},
        skip_blank_lines=True,
    )
    subjects = frame["subject"].dropna().unique()
    if len(subjects) != 1:
        raise ValueError(
            f"{path}: a WISDM file must contain one subject, found {len(subjects)} ({list(subjects)[:5]})."
        )
    return RawTable(
        values=frame[["x", "y", "z"]].to_numpy(dtype=np.float64),
        columns=["x", "y", "z"],
        unit="m/s^2",
        labels=frame["activity"].map(lambda code: WISDM_ACTIVITIES.get(code, code)).to_numpy(dtype=str),
        subject_id=str(subjects[0]),
        declared_rate=WISDM_SAMPLING_RATE,
        device={"type": "smartwatch (WISDM 2019)"},
    )


__all__ = ["DEVICE_SUFFIXES", "RawTable", "WISDM_ACTIVITIES", "WISDM_SAMPLING_RATE", "detect_format"]
