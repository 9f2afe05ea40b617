"""Fine-tune a RelCon encoder for activity recognition, then label every window of a new recording.

    python examples/finetune_activity.py runs/watch/encoder runs/watch-har --recording wrist.csv --sampling-rate 50

The training data is a dataset that `relcon-hf evaluate` can load (default: the seglearn watch exercises; WISDM with
`--dataset wisdm --data-path FOLDER`). To score the protocol first, run
`relcon-hf evaluate --model runs/watch/encoder --dataset watch --protocol finetune --output-dir results`.
"""

import argparse

import torch
from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification

import relcon_hf  # noqa: F401  (registers the RelCon classes with the Auto classes)
from relcon_hf.data import read_recording
from relcon_hf.evaluation.datasets import load_evaluation_dataset
from relcon_hf.evaluation.protocols import EvaluationSettings
from relcon_hf.evaluation.report import save_final_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="Folder of a RelCon encoder (pre-trained).")
    parser.add_argument("output_dir", help="Folder for the fine-tuned model.")
    parser.add_argument("--dataset", default="watch", help="Labelled dataset to train on.")
    parser.add_argument("--data-path", help="Folder or file of the dataset (default: the loader's default).")
    parser.add_argument("--epochs", type=int, default=10, help="Fine-tuning epochs.")
    parser.add_argument("--recording", help="A new recording to label: CSV, Parquet, NumPy or a device file.")
    parser.add_argument("--sampling-rate", type=float, help="Rate of the recording when it has no time column.")
    args = parser.parse_args()

    # 1. Fine-tune the encoder with an MLP head on every subject; a seeded fifth of them picks the best epoch.
    dataset = load_evaluation_dataset(args.dataset, args.data_path)
    settings = EvaluationSettings(protocol="finetune", epochs=args.epochs)
    save_final_model(args.checkpoint, dataset, settings, args.output_dir)
    print(f"Saved the activity model to {args.output_dir}")
    if args.recording is None:
        return

    # 2. Label a new recording: the saved folder contains the model, its label names and the feature extractor.
    model = AutoModelForSequenceClassification.from_pretrained(args.output_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(args.output_dir)
    recording = read_recording(args.recording, sampling_rate=args.sampling_rate)
    inputs = extractor(
        recording.values, sampling_rate=recording.sampling_rate, return_tensors="pt", return_window_positions=True
    )
    with torch.no_grad():
        logits = torch.cat([model(input_values=batch).logits for batch in torch.split(inputs["input_values"], 256)])
    for start, index in zip(inputs["window_start"].tolist(), logits.argmax(-1).tolist(), strict=True):
        print(f"{start:10.2f} s  {model.config.id2label[index]}")


if __name__ == "__main__":
    main()
