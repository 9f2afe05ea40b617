"""Fine-tune a RelCon encoder to regress gait metrics, then predict them on a new recording.

    python examples/finetune_gait.py runs/watch/encoder runs/mobgap-gait --data-path /path/to/mobgap

The training data is the Mobilise-D mobgap laboratory data with its reference walking speed, stride length and
cadence (see docs/evaluation-datasets.md). That sensor sits on the lower back, not the wrist, so a model
trained on it predicts for lower-back recordings. The saved head stores the targets' mean and standard deviation,
so its outputs are in m/s, m and steps/min.
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
    parser.add_argument("output_dir", help="Folder for the fine-tuned gait model.")
    parser.add_argument("--data-path", help="The mobgap folder (holding data/lab/...).")
    parser.add_argument("--epochs", type=int, default=10, help="Fine-tuning epochs.")
    parser.add_argument("--recording", help="A new lower-back walking recording: CSV, Parquet, NumPy or device file.")
    parser.add_argument("--sampling-rate", type=float, help="Rate of the recording when it has no time column.")
    args = parser.parse_args()

    dataset = load_evaluation_dataset("mobgap-gait", args.data_path)
    settings = EvaluationSettings(protocol="finetune", epochs=args.epochs, batch_size=16)
    save_final_model(args.checkpoint, dataset, settings, args.output_dir)
    print(f"Saved the gait model to {args.output_dir}")
    if args.recording is None:
        return

    model = AutoModelForSequenceClassification.from_pretrained(args.output_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(args.output_dir)
    recording = read_recording(args.recording, sampling_rate=args.sampling_rate)
    inputs = extractor(
        recording.values, sampling_rate=recording.sampling_rate, return_tensors="pt", return_window_positions=True
    )
    with torch.no_grad():
        outputs = torch.cat([model(input_values=batch).logits for batch in torch.split(inputs["input_values"], 256)])
    names = [model.config.id2label[index] for index in range(model.config.num_labels)]
    print("window_start_s," + ",".join(names))
    for start, values in zip(inputs["window_start"].tolist(), outputs.tolist(), strict=True):
        print(f"{start:.2f}," + ",".join(f"{value:.3f}" for value in values))


if __name__ == "__main__":
    main()
