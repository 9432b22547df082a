"""Training throughput of the full-size architecture (ViT-base/16 + GPT-2 small) on synthetic batches.

Random weights and random tensors: this measures the model's compute per step (forward, backward, AdamW),
not image decoding, so the figure is comparable across machines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from igcap.architecture import random_captioner
from igcap.train import TrainError, apply_strategy, mixed_precision


@dataclass(frozen=True)
class Throughput:
    strategy: str
    device: str
    precision: str
    batch_size: int
    steps: int
    samples_per_second: float
    peak_memory_mb: float | None  # GPU only

    def line(self) -> str:
        memory = f", peak GPU memory {self.peak_memory_mb:,.0f} MB" if self.peak_memory_mb else ""
        return (f"{self.strategy}: {self.samples_per_second:.1f} samples/s on {self.device} ({self.precision}, "
                f"batch {self.batch_size}, {self.steps} timed steps{memory})")


def full_size_model():
    """ViT-base/16 + GPT-2 small, random weights (igcap.architecture)."""
    return random_captioner()


def measure(strategy: str = "last-block", batch_size: int = 16, steps: int = 20, warmup: int = 3,
            caption_tokens: int = 32, precision: str = "auto", device: str | None = None,
            model=None) -> Throughput:
    """Samples per second of training steps after ``warmup`` untimed ones (``model``: default full size)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("there is no CUDA GPU here (torch sees none); use --device cpu, or leave --device out")
    if device == "cpu" and precision in ("fp16", "bf16"):
        raise TrainError(f"the benchmark measures fp32 on a CPU, not {precision}; use --precision fp32 (or auto)")
    fp16, bf16 = mixed_precision(precision) if device == "cuda" else (False, False)
    dtype = torch.bfloat16 if bf16 else torch.float16 if fp16 else None
    model = (model or full_size_model()).to(device).train()
    vocab, side = model.config.decoder.vocab_size, model.config.encoder.image_size
    apply_strategy(model, strategy)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
    scaler = torch.amp.GradScaler(device, enabled=fp16)
    pixels = torch.randn(batch_size, 3, side, side, device=device)  # (B, 3, H, W)
    labels = torch.randint(0, vocab, (batch_size, caption_tokens), device=device)  # (B, T)

    def step():
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = model(pixel_values=pixels, labels=labels).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    name = "bf16" if bf16 else "fp16" if fp16 else "fp32"
    return Throughput(strategy, _device_name(device), name, batch_size, steps, batch_size * steps / seconds, peak)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
