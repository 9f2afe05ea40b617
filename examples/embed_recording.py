"""Embed a wrist recording with a RelCon checkpoint and save one 256-d vector per window.

    python examples/embed_recording.py runs/watch/encoder wrist.csv embeddings.npz --sampling-rate 50

The recording can be CSV, Parquet or NumPy (see docs/data.md); its rate comes from a time column or
--sampling-rate, its unit is detected or given with --unit.
"""

import argparse

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel

import relcon_hf  # noqa: F401  (registers the RelCon classes with the Auto classes)
from relcon_hf.data import read_recording


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="Folder or Hub id of a RelCon encoder.")
    parser.add_argument("recording", help="CSV, Parquet or NumPy file of 3-axis acceleration.")
    parser.add_argument("output", help="Output .npz with `embeddings` and `window_start` (seconds).")
    parser.add_argument("--sampling-rate", type=float, help="Rate in Hz when the file has no time column.")
    parser.add_argument("--unit", choices=["g", "m/s^2"], help="Unit of the file (detected when omitted).")
    parser.add_argument("--hop-length", type=int, help="Step between windows in samples at 100 Hz.")
    args = parser.parse_args()

    model = AutoModel.from_pretrained(args.checkpoint).eval()
    extractor = AutoFeatureExtractor.from_pretrained(args.checkpoint)
    recording = read_recording(args.recording, sampling_rate=args.sampling_rate, unit=args.unit)

    inputs = extractor(
        recording.values,
        sampling_rate=recording.sampling_rate,
        hop_length=args.hop_length,
        return_tensors="pt",
        return_window_positions=True,
    )
    embeddings = []
    with torch.no_grad():
        for batch in torch.split(inputs["input_values"], 256):
            embeddings.append(model(input_values=batch).pooler_output)
    embeddings = torch.cat(embeddings).numpy()

    np.savez(args.output, embeddings=embeddings, window_start=inputs["window_start"].numpy())
    print(f"{len(embeddings)} windows -> {args.output} (embeddings {embeddings.shape})")


if __name__ == "__main__":
    main()
