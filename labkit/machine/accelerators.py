"""The GPUs a student meets in the clouds and on desks, as their makers' datasheets give them.

Memory is in GB as datasheets print it (the decimal unit, though the chips hold GiB); bandwidth is
the peak of the GPU's own memory in GB/s; ``fp16_tflops`` is dense FP16/BF16 tensor-core
throughput, without the 2:4 sparsity that datasheets quote by default (their starred figure is
twice this). These are peaks: a real model gets a fraction of them. Looked up on
:data:`LOOKED_UP`; ``note`` says where a figure is not what the headline column suggests.
"""

from __future__ import annotations

from dataclasses import dataclass

LOOKED_UP = "2026-12-04"


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gb: float
    bandwidth_gbs: float
    fp16_tflops: float   # dense FP16/BF16 tensor, no sparsity
    source: str          # the vendor document the figures come from
    note: str = ""


GPUS = (
    Gpu("T4", 16, 320, 65, "NVIDIA T4 Tensor Core GPU datasheet",
        "FP16 with FP32 accumulate; Turing has no BF16 and no sparsity"),
    Gpu("L4", 24, 300, 121, "NVIDIA L4 Tensor Core GPU datasheet", "datasheet: 242 with sparsity"),
    Gpu("A10G", 24, 600, 70, "AWS EC2 G5 instance page (memory, bandwidth)",
        "an AWS-only variant of the A10 with no NVIDIA datasheet: the tensor figure is unconfirmed "
        "(third parties give 62.5 to 70; the A10's own datasheet gives 125)"),
    Gpu("L40S", 48, 864, 362, "NVIDIA L40S datasheet", "datasheet: 733 with sparsity"),
    Gpu("A100 40GB", 40, 1555, 312, "NVIDIA A100 Tensor Core GPU datasheet", "SXM and PCIe; 624 with sparsity"),
    Gpu("A100 80GB SXM", 80, 2039, 312, "NVIDIA A100 Tensor Core GPU datasheet",
        "the PCIe card has 1935 GB/s; 624 with sparsity"),
    Gpu("H100 SXM", 80, 3350, 989, "NVIDIA H100 Tensor Core GPU datasheet", "datasheet: 1979 with sparsity"),
    Gpu("H200", 141, 4800, 989, "NVIDIA H200 Tensor Core GPU datasheet",
        "SXM; the H100's compute with more, faster memory; 1979 with sparsity"),
    Gpu("RTX 4090", 24, 1008, 165.2, "NVIDIA Ada GPU architecture whitepaper",
        "with FP32 accumulate (GeForce runs it at half rate); 330.3 with FP16 accumulate"),
)


def by_memory() -> list[Gpu]:
    """The table, smallest memory first (then the lower bandwidth first)."""
    return sorted(GPUS, key=lambda gpu: (gpu.memory_gb, gpu.bandwidth_gbs))


def get(name: str) -> Gpu:
    """The row called ``name`` (case and spaces ignored): ``get("h100 sxm")``."""
    wanted = name.replace(" ", "").lower()
    for gpu in GPUS:
        if gpu.name.replace(" ", "").lower() == wanted:
            return gpu
    raise KeyError(f"no GPU called {name!r}; the table has {', '.join(g.name for g in GPUS)}")
