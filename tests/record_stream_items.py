# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Record which items each rank's streams yield, one JSON file per rank. Run by tests/test_streaming.py:

    torchrun --nproc_per_node 2 tests/record_stream_items.py SHARDS OUTPUT_DIR --num-workers 1

Both streams are read for two epochs through a DataLoader, as the training loop reads them. After every batch the
ranks join in an all-reduce, the collective that DistributedDataParallel runs on every step, so a rank with fewer
batches than the others makes the run wait until the test's timeout.
"""

import argparse
import hashlib
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from relcon_hf.data import AnchorCandidateStream, WindowStream


def window_id(window: torch.Tensor) -> str:
    return hashlib.sha1(window.numpy().tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", help="shard folder")
    parser.add_argument("output_dir", help="folder for rank_<n>.json")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per process")
    parser.add_argument("--batch-size", type=int, default=16, help="windows or anchors per batch")
    parser.add_argument("--num-candidates", type=int, default=8, help="K of the anchor stream")
    args = parser.parse_args()

    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    streams = {
        "windows": WindowStream(args.shards, shuffle_buffer_size=64, seed=1, rank=rank, world_size=world_size),
        "anchors": AnchorCandidateStream(
            args.shards,
            num_candidates=args.num_candidates,
            shuffle_buffer_size=64,
            seed=1,
            rank=rank,
            world_size=world_size,
        ),
    }

    record: dict = {"rank": rank, "world_size": world_size}
    for name, stream in streams.items():
        record[name] = {"num_items": stream.num_items, "num_left_out": stream.num_left_out, "epochs": {}}
        loader = DataLoader(stream, batch_size=args.batch_size, num_workers=args.num_workers, drop_last=True)
        for epoch in (0, 1):
            stream.set_epoch(epoch)
            items = []
            for batch in loader:
                if name == "windows":
                    items.extend(window_id(window) for window in batch)
                else:
                    items.extend(zip(batch["group_id"], batch["anchor_index"].tolist(), strict=True))
                dist.all_reduce(torch.ones(1))
            record[name]["epochs"][str(epoch)] = items
        if name == "anchors":
            record[name]["skipped_groups"] = stream.skipped_groups

    output = Path(args.output_dir) / f"rank_{rank}.json"
    output.write_text(json.dumps(record))
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {rank} of {world_size} (pid {os.getpid()}) wrote {output}")


if __name__ == "__main__":
    main()
